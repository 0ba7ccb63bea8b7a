-- The current value of one score for every labelled item (a video relabelled after a new model is judged by
-- the new value). Inputs: labels (the labels asset's table), scores (the score's table, all shards).
SELECT s.video_id, any_value(s.score) AS score
FROM scores AS s SEMI JOIN labels AS l ON l.item = s.video_id
WHERE s.status = 'ok' AND s.score IS NOT NULL
GROUP BY s.video_id;
