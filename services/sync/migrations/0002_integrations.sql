-- The integrations' read model: one row per integration, folded by the aggregate's own
-- `evolve` (the whole state as JSON, credentials left out), plus the columns queries filter
-- and sort on.

CREATE TABLE integrations (
    tenant_id      uuid NOT NULL,
    integration_id uuid NOT NULL,
    name           text NOT NULL,
    type           text NOT NULL,
    enabled        boolean NOT NULL,
    -- When the schedule wants the next run (null: manual, or disabled).
    next_run_at    timestamptz,
    -- The due time the scheduler last queued a run for (written by the scheduler only): a
    -- run is queued once per due time.
    scheduled_for  timestamptz,
    state          jsonb NOT NULL,
    version        bigint NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, integration_id)
);
CREATE INDEX integrations_due ON integrations (next_run_at) WHERE next_run_at IS NOT NULL;

ALTER TABLE integrations ENABLE ROW LEVEL SECURITY;
ALTER TABLE integrations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON integrations
    USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on')
    WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on');
