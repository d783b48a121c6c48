-- Agent tokens revoked before they expire (a token is otherwise checked by its
-- signature alone). A row can go once `expires_at` (Unix seconds) has passed.
CREATE TABLE IF NOT EXISTS revoked_agent_tokens (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      TEXT NOT NULL
);
