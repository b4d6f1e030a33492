-- What integrations bring in, and what it is metered as.

-- Synced records, one per (integration, stream, external id): a re-run upserts the same rows
-- and, when nothing changed at the source, writes nothing.
CREATE TABLE records (
    tenant_id      uuid NOT NULL,
    integration_id uuid NOT NULL,
    stream         text NOT NULL,
    external_id    text NOT NULL,
    data           jsonb NOT NULL,
    -- Size of `data` as received (what is metered as storage).
    bytes          integer NOT NULL,
    synced_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, integration_id, stream, external_id)
);

-- Usage to report on `USAGE`, written in the same transaction as the records it counts, then
-- published in id order (the id is the report's sequence: billing counts each once).
CREATE TABLE usage_outbox (
    -- An identity (not bigserial): the service role may insert without rights on a sequence.
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    meter        text NOT NULL,
    quantity     bigint NOT NULL,
    window_start timestamptz NOT NULL,
    published    boolean NOT NULL DEFAULT false
);
CREATE INDEX usage_outbox_pending ON usage_outbox (id) WHERE NOT published;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['records', 'usage_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')
            WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')$p$, t);
    END LOOP;
END $$;
