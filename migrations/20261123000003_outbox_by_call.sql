-- The outbox worker looks up a call's earlier undelivered events (per-call order).
CREATE INDEX IF NOT EXISTS outbox_by_call ON webhook_outbox (call_control_id, seq);
