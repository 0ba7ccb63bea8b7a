-- The clips one ablation variant trains on: every encoded clip of its videos (latents of this run's encoders
-- $model and sample shape $params_hash, from the recipe's clips and the ablation's own), less the held-out
-- evaluation clips, in a fixed order.
-- Inputs: members (ablation_pool, all shards: variant, video_id), latents (mvdit_latents, all shards),
-- ablation_latents (all shards), held_out (eval_prompts: clip_id, held_out).
SELECT l.clip_id, l.video_id, l.latent_path, l.latent_shape
FROM (SELECT DISTINCT video_id FROM members WHERE variant = $variant) AS m
JOIN (SELECT * FROM latents UNION ALL BY NAME SELECT * FROM ablation_latents) AS l USING (video_id)
ANTI JOIN (SELECT clip_id FROM held_out WHERE held_out) AS h USING (clip_id)
WHERE l.status = 'ok' AND l.model = $model AND l.params_hash = $params_hash
QUALIFY row_number() OVER (PARTITION BY l.clip_id ORDER BY l.latent_path) = 1
ORDER BY l.video_id, l.clip_id;
