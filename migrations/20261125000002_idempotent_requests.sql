-- `Idempotency-Key` on POST /v2/calls, claimed before the call is placed (so
-- parallel requests with one key make one call), per API key, with the hash of
-- the request it was first used with. `status` 0: the first request is still
-- being answered. Replaces idempotency_keys (kept only for its replay window).
CREATE TABLE IF NOT EXISTS idempotent_requests (
    organization_id TEXT NOT NULL,
    api_key_id      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    status          BIGINT NOT NULL,
    response        TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (organization_id, api_key_id, idempotency_key)
);
DROP TABLE IF EXISTS idempotency_keys;
