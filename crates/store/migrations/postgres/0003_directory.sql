-- The directory: tenants, their API tokens and their rulesets. Unlike call_events these
-- rows change (a token is revoked, a ruleset version activated), but a ruleset version is
-- never rewritten: a new upload is a new version. Every constraint is named so the store can
-- map a violation to a domain error (StoreError::AlreadyExists / NotFound).
CREATE TABLE tenants (
    id                      text        NOT NULL,
    name                    text        NOT NULL,
    created_at              timestamptz NOT NULL,
    -- The ruleset new calls run with; both set or both NULL.
    active_ruleset_id       text,
    active_ruleset_version  bigint,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_active_ruleset_check
        CHECK ((active_ruleset_id IS NULL) = (active_ruleset_version IS NULL))
);

-- Bearer tokens. Only the SHA-256 of the secret is stored; a token is found by it.
CREATE TABLE api_tokens (
    id              uuid        NOT NULL,
    tenant_id       text        NOT NULL,
    role            text        NOT NULL,
    -- Who or what holds it ("alice", "replay-cli").
    name            text        NOT NULL,
    secret_sha256   bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    revoked_at      timestamptz,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT api_tokens_secret_sha256_key UNIQUE (secret_sha256),
    CONSTRAINT api_tokens_role_check CHECK (role IN ('service', 'agent', 'supervisor', 'admin')),
    CONSTRAINT api_tokens_secret_sha256_check CHECK (octet_length(secret_sha256) = 32)
);

CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at, id);

-- Every uploaded version of every ruleset, as uploaded (YAML).
CREATE TABLE rulesets (
    tenant_id   text        NOT NULL,
    id          text        NOT NULL,
    version     bigint      NOT NULL,
    source      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    CONSTRAINT rulesets_pkey PRIMARY KEY (tenant_id, id, version),
    CONSTRAINT rulesets_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT rulesets_version_check CHECK (version BETWEEN 1 AND 4294967295)
);

-- A tenant's active ruleset is one of its own versions (NULL: none activated yet).
ALTER TABLE tenants
    ADD CONSTRAINT tenants_active_ruleset_fkey
    FOREIGN KEY (id, active_ruleset_id, active_ruleset_version)
    REFERENCES rulesets (tenant_id, id, version);
