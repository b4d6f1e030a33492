-- What the roll-up pays per row.
--
-- The platform test first in every table's policy: the roll-up and the period close write in
-- platform scope, and an OR stops at its first true term, so they no longer cast each row's
-- tenant_id to text to compare it with a setting that is not set (about a tenth of the
-- roll-up's Postgres time went to it).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subscriptions', 'alerts', 'tenant_names', 'usage_hourly', 'usage_periods',
                             'usage_marks', 'quota_outbox', 'quotas', 'checkouts', 'invoices'] LOOP
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
ALTER TABLE usage_marks SET (fillfactor = 70);
