-- Tenancy, call control, durable webhooks and the audit log (portable SQLite/PostgreSQL).

CREATE TABLE IF NOT EXISTS organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- API keys are stored as SHA-256 hashes; `prefix` is shown to people to tell keys apart.
CREATE TABLE IF NOT EXISTS api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    role            TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    prefix          TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);

-- Call control applications (Telnyx "connections"). `settings` holds Bond's own
-- per-connection settings as JSON (inbound routing, outbound trunk, stream token...).
CREATE TABLE IF NOT EXISTS connections (
    id                         TEXT PRIMARY KEY,
    organization_id            TEXT NOT NULL REFERENCES organizations (id),
    application_name           TEXT NOT NULL,
    webhook_event_url          TEXT NOT NULL,
    webhook_event_failover_url TEXT,
    webhook_timeout_secs       BIGINT,
    active                     BIGINT NOT NULL,
    settings                   TEXT NOT NULL,
    created_at                 TEXT NOT NULL,
    updated_at                 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS connections_by_org ON connections (organization_id, created_at);

CREATE TABLE IF NOT EXISTS calls (
    call_control_id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    connection_id   TEXT NOT NULL REFERENCES connections (id),
    call_leg_id     TEXT NOT NULL,
    call_session_id TEXT NOT NULL,
    direction       TEXT NOT NULL,
    state           TEXT NOT NULL,
    from_number     TEXT NOT NULL,
    to_number       TEXT NOT NULL,
    from_display_name TEXT,
    client_state    TEXT,
    webhook_url     TEXT,
    webhook_failover_url TEXT,
    webhook_timeout_secs BIGINT NOT NULL,
    bridged_with    TEXT,
    hangup_cause    TEXT,
    hangup_source   TEXT,
    time_limit_secs BIGINT,
    created_at      TEXT NOT NULL,
    answered_at     TEXT,
    ended_at        TEXT
);
CREATE INDEX IF NOT EXISTS calls_by_org ON calls (organization_id, created_at);

-- `command_id` makes an action idempotent per call: the first answer is replayed.
CREATE TABLE IF NOT EXISTS call_commands (
    call_control_id TEXT NOT NULL,
    command_id      TEXT NOT NULL,
    action          TEXT NOT NULL,
    status          BIGINT NOT NULL,
    response        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (call_control_id, command_id)
);

-- `Idempotency-Key` on POST /v2/calls.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    organization_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status          BIGINT NOT NULL,
    response        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, idempotency_key)
);

-- The webhook outbox: written in the same transaction as the state change it
-- reports, delivered in `seq` order by the delivery worker.
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              TEXT PRIMARY KEY,
    seq             BIGINT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL,
    call_control_id TEXT,
    event_type      TEXT NOT NULL,
    body            TEXT NOT NULL,
    url             TEXT NOT NULL,
    failover_url    TEXT,
    timeout_secs    BIGINT NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    TEXT,
    delivered_to    TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON webhook_outbox (delivered_at, next_attempt_at);

CREATE TABLE IF NOT EXISTS audit_log (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    api_key_id      TEXT NOT NULL,
    method          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          BIGINT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_org ON audit_log (organization_id, created_at);

CREATE TABLE IF NOT EXISTS voice_configs (
    organization_id TEXT PRIMARY KEY REFERENCES organizations (id),
    config          TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
