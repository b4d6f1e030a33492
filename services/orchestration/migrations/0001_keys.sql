-- The orchestration service's keystore: each tenant's data keys (which seal its deployments'
-- secret environment variables), stored only wrapped by the master key. The same tables as
-- sync's (the kit's `seal` module reads them). Applied inside the service's schema.
-- Rows carry row-level security, forced: a transaction sees the tenant it set, or every row
-- in platform scope (the master key's re-wrap).

CREATE TABLE data_keys (
    tenant_id  uuid NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    -- Which master key wrapped it (a rotation re-wraps those under an older one).
    master_id  text NOT NULL,
    -- nonce ‖ AES-256-GCM(data key) ‖ tag, bound to the tenant and version.
    wrapped    bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, version)
);
CREATE INDEX data_keys_master ON data_keys (master_id);

-- Tenants whose data keys were deleted (decommission): no new key is made for them.
CREATE TABLE shredded_tenants (
    tenant_id   uuid PRIMARY KEY,
    shredded_at timestamptz NOT NULL DEFAULT now()
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['data_keys', 'shredded_tenants'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')
            WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')$p$, t);
    END LOOP;
END $$;
