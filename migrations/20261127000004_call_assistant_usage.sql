-- What the call's voice agents used and cost, added up over its conversations
-- (JSON text; NULL for a call no agent talked on): GET /v2/calls/{id} and
-- call.hangup show it as bond_assistant_usage.
ALTER TABLE calls ADD COLUMN assistant_usage TEXT;
