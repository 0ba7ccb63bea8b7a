-- Cut lines of one score over its distinct ok videos (a video present in two shards counts once).
-- Percentile rules pass quantiles ($lower_q/$upper_q in 0..1); absolute rules pass bounds.
WITH distinct_scores AS (
    SELECT video_id, any_value(score) AS score
    FROM scores
    WHERE status = 'ok'
    GROUP BY video_id
)
SELECT
    CASE WHEN $lower_q IS NULL THEN $lower_abs
         ELSE quantile_cont(score, coalesce($lower_q, 0.5)) END AS lower,
    CASE WHEN $upper_q IS NULL THEN $upper_abs
         ELSE quantile_cont(score, coalesce($upper_q, 0.5)) END AS upper,
    count(*) AS videos
FROM distinct_scores;
