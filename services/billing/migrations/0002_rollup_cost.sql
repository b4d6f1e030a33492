-- What the roll-up pays per row.

-- A reporter's mark (the last sequence counted for it, tenant and meter) moves into the row
-- of the window its reports add to: the roll-up updates that row anyway, so a mark costs no
-- row of its own. Keys are `<meter as reported>/<reporter>`. The marks of the old table go to
-- their tenant's current month.
ALTER TABLE usage_periods ADD COLUMN marks jsonb NOT NULL DEFAULT '{}';
UPDATE usage_periods u SET marks = m.marks
FROM (SELECT tenant_id,
             CASE meter WHEN 'http' THEN 'requests' ELSE meter END AS row_meter,
             jsonb_object_agg(meter || '/' || instance_id, sequence) AS marks
      FROM usage_marks GROUP BY 1, 2) m
WHERE u.tenant_id = m.tenant_id AND u.meter = m.row_meter
  AND u.period_start = date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
DROP TABLE usage_marks;

-- The platform test first in every table's policy: the roll-up and the period close write in
-- platform scope, and an OR stops at its first true term, so they no longer cast each row's
-- tenant_id to text to compare it with a setting that is not set (about a tenth of the
-- roll-up's Postgres time went to it).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subscriptions', 'alerts', 'tenant_names', 'usage_hourly', 'usage_periods',
                             'quota_outbox', 'quotas', 'checkouts', 'invoices'] LOOP
        EXECUTE format($p$ALTER POLICY tenant_isolation ON %I
            USING (current_setting('tenantry.platform_scope', true) = 'on'
                   OR tenant_id::text = current_setting('tenantry.tenant_id', true))
            WITH CHECK (current_setting('tenantry.platform_scope', true) = 'on'
                   OR tenant_id::text = current_setting('tenantry.tenant_id', true))$p$, t);
    END LOOP;
END $$;

-- The roll-up adds to the same rows batch after batch: room left in each page lets Postgres
-- write the new version beside the old one without touching the indexes (a HOT update).
ALTER TABLE usage_hourly SET (fillfactor = 70);
ALTER TABLE usage_periods SET (fillfactor = 70);
