-- Live translation: one row per translated utterance of a call, in the order spoken.
CREATE TABLE IF NOT EXISTS call_translations (
    id               TEXT PRIMARY KEY,
    organization_id  TEXT NOT NULL REFERENCES organizations (id),
    call_control_id  TEXT NOT NULL,
    call_session_id  TEXT NOT NULL,
    track            TEXT NOT NULL,
    language_from    TEXT NOT NULL,
    language_to      TEXT NOT NULL,
    original         TEXT NOT NULL,
    translation      TEXT NOT NULL,
    speech_start_ms  BIGINT NOT NULL,
    speech_end_ms    BIGINT NOT NULL,
    latency_ms       BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    created_unix_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS call_translations_by_call ON call_translations (call_control_id, created_unix_ms);
CREATE INDEX IF NOT EXISTS call_translations_by_org ON call_translations (organization_id, created_unix_ms);
