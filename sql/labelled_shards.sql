-- The shards that hold a video someone labelled: what the learned filter reads to fit.
-- Inputs: labels (item), manifest (video_manifest, all shards).
SELECT DISTINCT m.shard
FROM manifest AS m SEMI JOIN labels AS l ON l.item = m.video_id
WHERE m.status = 'ok'
ORDER BY m.shard;
