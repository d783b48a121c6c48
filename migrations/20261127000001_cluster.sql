-- Many Bond nodes on one database (docs/cluster.md).
-- Which node carries a call's legs (`cluster.node_id`); NULL for calls
-- written before nodes were named. A starting node ends only its own orphans.
ALTER TABLE calls ADD COLUMN node_id TEXT;
CREATE INDEX IF NOT EXISTS calls_live_by_node ON calls (node_id, ended_at);

-- The delivery partition of an outbox row (a hash of its call, or of the event
-- for an account event): each partition is delivered by one node at a time.
ALTER TABLE webhook_outbox ADD COLUMN lane BIGINT NOT NULL DEFAULT 0;

-- Nodes alive: each renews its lease every second; one whose lease lapsed is
-- dead, and any other node ends its calls and removes its row.
CREATE TABLE IF NOT EXISTS cluster_nodes (
    node_id     TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    http_url    TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    -- unix ms, on the database's clock
    lease_until BIGINT NOT NULL,
    legs        BIGINT NOT NULL
);
