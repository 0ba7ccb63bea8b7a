-- The clips a training run reads: rows of the dataset export (full or HD) whose latents were
-- encoded with this run's encoders ($model) and sample shape ($params_hash), in export order.
-- The held-out evaluation clips are left out.
-- Inputs: dataset (an export), latents (mvdit_latents, all shards), held_out (eval_prompts: clip_id, held_out).
SELECT d.clip_id, d.caption, d.video_id, l.latent_path, l.latent_shape
FROM dataset AS d
JOIN latents AS l ON l.clip_id = d.clip_id
ANTI JOIN (SELECT clip_id FROM held_out WHERE held_out) AS h ON h.clip_id = d.clip_id
WHERE l.status = 'ok' AND l.model = $model AND l.params_hash = $params_hash
QUALIFY row_number() OVER (PARTITION BY d.clip_id ORDER BY l.latent_path) = 1
ORDER BY d.shard, d.clip_id;
