-- The directory: tenants, their API tokens and their rulesets (see the Postgres migration).
-- SQLite reports a CHECK by its name but a UNIQUE or PRIMARY KEY violation by its columns and
-- a foreign key violation by nothing at all: the store maps those per statement. Times are
-- microseconds since the Unix epoch, as in call_index.
-- (tenants references rulesets before it exists: SQLite resolves foreign keys when rows are
-- written.)
CREATE TABLE tenants (
    id                      TEXT    NOT NULL,
    name                    TEXT    NOT NULL,
    created_at              INTEGER NOT NULL,
    active_ruleset_id       TEXT,
    active_ruleset_version  INTEGER,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_active_ruleset_check
        CHECK ((active_ruleset_id IS NULL) = (active_ruleset_version IS NULL)),
    CONSTRAINT tenants_active_ruleset_fkey
        FOREIGN KEY (id, active_ruleset_id, active_ruleset_version)
        REFERENCES rulesets (tenant_id, id, version)
);

CREATE TABLE api_tokens (
    id              TEXT    NOT NULL,
    tenant_id       TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    secret_sha256   BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT api_tokens_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT api_tokens_secret_sha256_key UNIQUE (secret_sha256),
    CONSTRAINT api_tokens_role_check CHECK (role IN ('service', 'agent', 'supervisor', 'admin')),
    CONSTRAINT api_tokens_secret_sha256_check
        CHECK (typeof(secret_sha256) = 'blob' AND length(secret_sha256) = 32)
);

CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at, id);

CREATE TABLE rulesets (
    tenant_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    source      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL,
    CONSTRAINT rulesets_pkey PRIMARY KEY (tenant_id, id, version),
    CONSTRAINT rulesets_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT rulesets_version_check CHECK (version BETWEEN 1 AND 4294967295)
);
