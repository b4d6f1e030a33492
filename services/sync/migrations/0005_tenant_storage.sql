-- Each tenant's stored bytes (the sum of its records' `bytes`), kept by the statement that
-- upserts records, so the plan's storage alert reads one row instead of summing every record
-- of the tenant after each run.

CREATE TABLE tenant_storage (
    tenant_id uuid PRIMARY KEY,
    bytes     bigint NOT NULL
);

INSERT INTO tenant_storage (tenant_id, bytes)
SELECT tenant_id, SUM(bytes) FROM records GROUP BY tenant_id;

ALTER TABLE tenant_storage ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_storage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_storage
    USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on')
    WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on');
