-- The clips a training run reads: rows of the dataset export (full or HD) whose latents were
-- encoded with this run's encoders ($model) and sample shape ($params_hash), in export order.
-- Inputs: dataset (an export), latents (mvdit_latents, all shards).
SELECT d.clip_id, d.caption, d.video_id, l.latent_path, l.latent_shape
FROM dataset AS d
JOIN latents AS l ON l.clip_id = d.clip_id
WHERE l.status = 'ok' AND l.model = $model AND l.params_hash = $params_hash
QUALIFY row_number() OVER (PARTITION BY d.clip_id ORDER BY l.latent_path) = 1
ORDER BY d.shard, d.clip_id;
