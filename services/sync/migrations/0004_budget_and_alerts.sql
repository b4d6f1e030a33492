-- Each tenant's provider calls per day (its plan's `api_calls_per_day` is the budget), the
-- alerts raised on its integrations (projected from the log), and which tenant-wide
-- conditions have alerted (so two integrations do not both raise the same one).

CREATE TABLE api_budget (
    tenant_id uuid NOT NULL,
    -- UTC day.
    day       date NOT NULL,
    calls     bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Projected from `integration.alert_raised.v1`, `integration.failing.v1` and an automatic
-- `integration.disabled.v1`; the event id is the alert id.
CREATE TABLE alerts (
    tenant_id      uuid NOT NULL,
    alert_id       text NOT NULL,
    integration_id uuid NOT NULL,
    kind           text NOT NULL,
    message        text NOT NULL,
    raised_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, alert_id)
);
CREATE INDEX alerts_newest ON alerts (tenant_id, raised_at DESC);

-- A tenant-wide condition (kind, key: the day of an API budget, a plan's storage) that alerted.
CREATE TABLE alert_marks (
    tenant_id uuid NOT NULL,
    kind      text NOT NULL,
    key       text NOT NULL,
    PRIMARY KEY (tenant_id, kind, key)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_budget', 'alerts', 'alert_marks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')
            WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')$p$, t);
    END LOOP;
END $$;
