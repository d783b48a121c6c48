-- The SIP calls each connection carries, across every node sharing the
-- database: `bond.sip.max_concurrent_calls` holds for the cluster. A row is
-- taken when a SIP call is recorded and given back when the call's end is.
CREATE TABLE IF NOT EXISTS sip_slots (
    call_control_id TEXT PRIMARY KEY,
    connection_id   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sip_slots_by_connection ON sip_slots (connection_id);
