-- A node's CPU over its last second, in percent of one core (it may exceed
-- 100 on a node with several cores), renewed with its lease.
ALTER TABLE cluster_nodes ADD COLUMN cpu_percent BIGINT NOT NULL DEFAULT 0;
