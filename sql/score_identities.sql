-- Model identities (model, weights digest, parameters) of one score across shards, with the shards of each:
-- more than one row means the shards were scored by different models.
SELECT model, weights_digest, params_hash, list(DISTINCT shard ORDER BY shard) AS shards
FROM identities
GROUP BY model, weights_digest, params_hash
ORDER BY len(shards) DESC, model;
