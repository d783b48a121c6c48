-- Call recordings: one row per recording, the WAV file under recordings_dir.
CREATE TABLE IF NOT EXISTS recordings (
    id                   TEXT PRIMARY KEY,
    organization_id      TEXT NOT NULL REFERENCES organizations (id),
    call_control_id      TEXT NOT NULL,
    call_leg_id          TEXT NOT NULL,
    call_session_id      TEXT NOT NULL,
    connection_id        TEXT NOT NULL,
    channels             TEXT NOT NULL,
    sample_rate          BIGINT NOT NULL,
    status               TEXT NOT NULL,
    file_name            TEXT NOT NULL,
    duration_millis      BIGINT,
    recording_started_at TEXT NOT NULL,
    recording_ended_at   TEXT
);
CREATE INDEX IF NOT EXISTS recordings_by_org ON recordings (organization_id, recording_started_at);
CREATE INDEX IF NOT EXISTS recordings_by_call ON recordings (call_control_id);
