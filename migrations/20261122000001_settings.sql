-- Installation-wide settings (instance id, and later the webhook signing key).
-- Portable SQL: runs unchanged on SQLite and PostgreSQL.
CREATE TABLE IF NOT EXISTS settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
