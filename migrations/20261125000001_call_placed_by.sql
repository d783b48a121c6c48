-- Who placed a call (an API key's id, or `agent:<name>` for an agent token): an
-- agent acts only on the calls it placed or is a party to.
ALTER TABLE calls ADD COLUMN placed_by TEXT;
