-- The default prompt set of evaluation: $count clips of the curated dataset, chosen by a hash of the clip id
-- (the same clips on every run and machine, spread over shards and sources). $hold: they are held out, and
-- training leaves these clip ids out (sql/training_clips.sql, sql/ablation_training_clips.sql); false only for a
-- dataset too small to spare any, whose prompts are then captions the model was trained on (and say so).
-- Inputs: dataset (the export MVDiT trains on).
SELECT clip_id, caption AS prompt, video_id, $hold AS held_out
FROM (SELECT * FROM dataset QUALIFY row_number() OVER (PARTITION BY clip_id) = 1)
ORDER BY md5(clip_id)
LIMIT $count;
