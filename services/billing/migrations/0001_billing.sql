-- The billing service's read models. Applied inside the service's schema (search_path).
-- Tenant rows carry row-level security: a transaction sees the rows of the tenant it set, or
-- every row when it is explicitly in platform scope (projections, platform admins, jobs).

-- The catalog: platform-wide, readable by every caller (no tenant data).
CREATE TABLE plans (
    name       text PRIMARY KEY,
    definition bytea NOT NULL,          -- tenantry.events.v1.PlanDefined
    retired    boolean NOT NULL,
    updated_at timestamptz NOT NULL
);

-- One row per tenant's subscription: query columns plus the whole aggregate state.
CREATE TABLE subscriptions (
    tenant_id     uuid PRIMARY KEY,
    plan          text NOT NULL,
    status        text NOT NULL,
    period_end    timestamptz NOT NULL,
    past_due_since timestamptz,
    state         jsonb NOT NULL,
    version       bigint NOT NULL,
    updated_at    timestamptz NOT NULL,
    -- Whether billing has had the tenant suspended for non-payment (written by the dunning
    -- job, never by the projection): only such a suspension is lifted when the tenant pays.
    tenant_suspended boolean NOT NULL DEFAULT false,
    -- When the earliest quota window with crossed thresholds ends (the dispatcher resets it).
    quota_reset_due timestamptz
);
CREATE INDEX subscriptions_quota_reset ON subscriptions (quota_reset_due) WHERE quota_reset_due IS NOT NULL;
CREATE INDEX subscriptions_period_end ON subscriptions (period_end) WHERE status <> 'canceled';
CREATE INDEX subscriptions_past_due ON subscriptions (past_due_since) WHERE past_due_since IS NOT NULL;

-- Quota alerts: each threshold crossed, once per meter, period and percent.
CREATE TABLE alerts (
    tenant_id    uuid NOT NULL,
    meter        text NOT NULL,
    period_start timestamptz NOT NULL,
    percent      integer NOT NULL,
    used         bigint NOT NULL,
    quota        bigint NOT NULL,
    at           timestamptz NOT NULL,
    emailed      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, meter, period_start, percent)
);
CREATE INDEX alerts_to_mail ON alerts (period_start) WHERE NOT emailed;

-- Tenants' names as the tenant service created them, for the alert e-mails.
CREATE TABLE tenant_names (
    tenant_id uuid PRIMARY KEY,
    name      text NOT NULL
);

-- Usage per tenant, meter and hour, and per quota window (a calendar month; a day for
-- `api_calls`): what quotas are measured on.
CREATE TABLE usage_hourly (
    tenant_id uuid NOT NULL,
    meter     text NOT NULL,
    hour      timestamptz NOT NULL,
    quantity  bigint NOT NULL,
    PRIMARY KEY (tenant_id, meter, hour)
);
CREATE TABLE usage_periods (
    tenant_id    uuid NOT NULL,
    meter        text NOT NULL,
    period_start timestamptz NOT NULL,
    quantity     bigint NOT NULL,
    PRIMARY KEY (tenant_id, meter, period_start)
);

-- The last report counted per reporter, tenant and meter: a report at or below it (a
-- duplicate published past the stream's deduplication window) is not counted again.
CREATE TABLE usage_marks (
    tenant_id   uuid NOT NULL,
    instance_id text NOT NULL,
    meter       text NOT NULL,
    sequence    bigint NOT NULL,
    PRIMARY KEY (tenant_id, instance_id, meter)
);

-- Thresholds the roll-up saw crossed, written in the roll-up's transaction and appended to
-- the log by the quota dispatcher (so a crash between the two loses nothing).
CREATE TABLE quota_outbox (
    tenant_id    uuid NOT NULL,
    meter        text NOT NULL,
    period_start timestamptz NOT NULL,
    percent      integer NOT NULL,
    used         bigint NOT NULL,
    quota        bigint NOT NULL,
    appended     boolean NOT NULL DEFAULT false,
    -- Per quota too: after an upgrade within the month, the new limit's thresholds count.
    PRIMARY KEY (tenant_id, meter, period_start, percent, quota)
);
CREATE INDEX quota_outbox_pending ON quota_outbox (tenant_id) WHERE NOT appended;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['subscriptions', 'alerts', 'tenant_names', 'usage_hourly', 'usage_periods',
                             'usage_marks', 'quota_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')
            WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')$p$, t);
    END LOOP;
END $$;

-- Webhook deliveries already acted on, per provider (Stripe event ids, Efí endToEndIds):
-- kept 30 days, so a redelivery within them has no second effect.
CREATE TABLE webhook_deliveries (
    provider    text NOT NULL,
    id          text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, id)
);

-- The quotas in force per tenant and meter (from each subscription's limits), for the
-- roll-up to compare period totals against in the same statement that adds to them.
CREATE TABLE quotas (
    tenant_id uuid NOT NULL,
    meter     text NOT NULL,
    quota     bigint NOT NULL,
    PRIMARY KEY (tenant_id, meter)
);
ALTER TABLE quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quotas
    USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on')
    WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on');

-- Checkouts opened, by the provider's reference: whose they are and for which plan (a Pix
-- payment names only its txid).
CREATE TABLE checkouts (
    provider   text NOT NULL,
    reference  text NOT NULL,
    tenant_id  uuid NOT NULL,
    plan       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, reference)
);

-- Invoices as their events left them (the whole invoice, with its lines, as protobuf).
CREATE TABLE invoices (
    tenant_id  uuid NOT NULL,
    number     bigint NOT NULL,
    status     text NOT NULL,
    total      bigint NOT NULL,
    issued_at  timestamptz NOT NULL,
    invoice    bytea NOT NULL,
    PRIMARY KEY (tenant_id, number)
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['checkouts', 'invoices'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')
            WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
                   OR current_setting('tenantry.platform_scope', true) = 'on')$p$, t);
    END LOOP;
END $$;
