-- The named source of every shard (lists written before sources existed belong to 'default').
-- Inputs: shard_lists (every shard).
SELECT shard, coalesce(any_value(source), 'default') AS source
FROM shard_lists
GROUP BY shard
ORDER BY shard;
