-- Every clip's caption once (a shard re-listing a video repeats its clips). Inputs: captions (all shards).
SELECT clip_id, any_value(video_id) AS video_id, any_value(caption) AS caption
FROM captions
WHERE status = 'ok'
GROUP BY clip_id
ORDER BY clip_id;
