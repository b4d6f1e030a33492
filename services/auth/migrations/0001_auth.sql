-- The auth service's tables. Applied inside the service's schema (search_path).

-- Ed25519 signing keys, sealed under the master key. Platform-wide: no tenant, no RLS.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    sealed_seed  bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    -- Signs from this moment (published before, so verifiers know it first).
    activates_at timestamptz NOT NULL,
    -- Stops signing here; published until every token it signed has expired.
    retired_at   timestamptz
);

-- Federated logins between BeginOidcLogin and CompleteOidcLogin; each row is used once.
CREATE TABLE oidc_logins (
    state_digest  bytea PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    provider_id   uuid NOT NULL,
    nonce         text NOT NULL,
    code_verifier text NOT NULL,
    redirect_uri  text NOT NULL,
    expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expiry ON oidc_logins (expires_at);

-- Which tenants each user belongs to (projected from `team` events), for the membership
-- list a login returns. The team aggregate itself answers everything else.
CREATE TABLE memberships (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    role      text NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- A transaction sees the rows of the tenant it set, or every row in platform scope.
ALTER TABLE oidc_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE oidc_logins FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oidc_logins
    USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on')
    WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on');

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON memberships
    USING (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on')
    WITH CHECK (tenant_id::text = current_setting('tenantry.tenant_id', true)
           OR current_setting('tenantry.platform_scope', true) = 'on');

CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
