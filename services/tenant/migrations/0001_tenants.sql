-- The tenant service's read model. Applied inside the service's schema (search_path), so the
-- same migration builds the live schema and any fresh schema a rebuild projects into.

-- One row per tenant: query columns plus the whole aggregate state (also the snapshot the
-- service can start from).
CREATE TABLE tenants (
    tenant_id     uuid PRIMARY KEY,
    slug          text NOT NULL UNIQUE,
    name          text NOT NULL,
    kind          text NOT NULL,
    status        text NOT NULL,
    trial_ends_at timestamptz,
    trial_expired boolean NOT NULL,
    state         jsonb NOT NULL,
    version       bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
) WITH (fillfactor = 70); -- room on each page for HOT updates: most events rewrite a row in place

-- Trials still running, for the expiry sweep.
CREATE INDEX tenants_running_trials ON tenants (trial_ends_at) WHERE kind = 'trial' AND NOT trial_expired;

-- Row-level security: a transaction sees the rows of the tenant it set, or every row when it
-- is explicitly in platform scope (projections, platform admins, platform jobs).
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (
        tenant_id::text = current_setting('tenantry.tenant_id', true)
        OR current_setting('tenantry.platform_scope', true) = 'on'
    )
    WITH CHECK (
        tenant_id::text = current_setting('tenantry.tenant_id', true)
        OR current_setting('tenantry.platform_scope', true) = 'on'
    );

-- How far each projection has applied the log (not tenant data: no RLS).
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
