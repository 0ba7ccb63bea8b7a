-- Stratified samples for people to label: one score's distinct ok videos split into $bands equal-count bands
-- (quantile bands, lowest first), up to $per_band videos from each, picked by a seeded hash (the same sample
-- every time for the same seed), each with its preview, source, a caption and the cut lines that judge it.
-- Inputs: scores (one score table, all shards), previews (all shards), sources (shard, source), captions
-- (video_id, caption; may be empty), thresholds (source, score, lower, upper, description; may be empty).
WITH s AS (
    SELECT video_id, any_value(score) AS score
    FROM scores WHERE status = 'ok' AND score IS NOT NULL AND isfinite(score)
    GROUP BY video_id
),
shown AS (
    -- only videos with a preview can be judged; a video listed twice has one preview row per shard
    SELECT s.video_id, s.score, any_value(p.shard) AS shard, any_value(p.preview) AS preview,
           any_value(p.poster) AS poster
    FROM s JOIN previews AS p ON p.item = s.video_id AND p.status = 'ok'
    GROUP BY s.video_id, s.score
),
banded AS (
    SELECT *, ntile($bands) OVER (ORDER BY score, video_id) AS band FROM shown
),
picked AS (
    SELECT *, row_number() OVER (PARTITION BY band ORDER BY hash(video_id || $seed), video_id) AS pick FROM banded
)
SELECT p.video_id AS item, 'video' AS kind, p.score, p.band, p.pick, p.shard, p.preview, p.poster,
       coalesce(src.source, 'default') AS source, c.caption, t.lower, t.upper, t.description
FROM picked AS p
LEFT JOIN sources AS src ON src.shard = p.shard
LEFT JOIN (SELECT video_id, min(caption) AS caption FROM captions GROUP BY video_id) AS c ON c.video_id = p.video_id
LEFT JOIN thresholds AS t ON t.source = coalesce(src.source, 'default') AND t.score = $score
WHERE p.pick <= $per_band
ORDER BY p.band, p.score, p.video_id;
