-- Each organization's webhook signing key (the Ed25519 secret, base64), as
-- Telnyx gives each account its own. Organizations made before this table
-- existed have no row and keep signing with the instance key in `settings`.
CREATE TABLE IF NOT EXISTS organization_signing_keys (
    organization_id TEXT PRIMARY KEY,
    secret          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
