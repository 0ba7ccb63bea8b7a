-- How many videos of each shard reached each kind of per-shard work, and their hours: every input video (the
-- scores, previews), the candidates (clarity), the selected (clips) and the clipped (captions, caption checks,
-- counted in clips). Inputs: lineage. Parameter: $shards (a list: only these shards; NULL: every shard).
SELECT shard,
       count(*) AS input,
       count(*) FILTER (WHERE stage IN ('clarity', 'clips', 'captions', 'captioned')) AS candidate,
       count(*) FILTER (WHERE stage IN ('clips', 'captions', 'captioned')) AS selected,
       coalesce(sum(clips) FILTER (WHERE stage IN ('captions', 'captioned')), 0)::BIGINT AS clip,
       coalesce(sum(duration_s), 0) / 3600 AS input_hours
FROM lineage
WHERE $shards IS NULL OR list_contains($shards, shard)
GROUP BY shard
ORDER BY shard;
