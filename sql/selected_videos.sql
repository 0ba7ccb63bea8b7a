-- One shard: candidates that also pass clarity (computed on candidates only).
-- Inputs: candidates (quality_candidates of this shard), clarity (clarity_scores of this shard),
-- thresholds (clarity_threshold: this shard's source's row). $clarity_applied false: the source skips clarity
-- (the recipe), so every candidate passes unscored.
WITH cut AS (
    SELECT any_value(lower) AS lower, any_value(upper) AS upper, any_value(description) AS description,
           any_value(version) AS version
    FROM thresholds WHERE score = 'clarity'
)
SELECT
    c.video_id, c.source_uri, cl.score AS clarity,
    CASE WHEN NOT $clarity_applied THEN NULL
         WHEN cl.status IS NULL THEN 'clarity: not scored'
         WHEN cl.status <> 'ok' THEN 'clarity: ' || cl.error END AS failure,
    CASE WHEN $clarity_applied AND cl.status = 'ok'
         THEN verdict('clarity', cl.score, cut.lower, cut.upper, cut.description) END AS clarity_reason,
    NOT $clarity_applied OR coalesce(cl.status = 'ok'
             AND verdict('clarity', cl.score, cut.lower, cut.upper, cut.description) IS NULL, false) AS selected,
    cut.version AS clarity_version
FROM candidates AS c
CROSS JOIN cut
LEFT JOIN clarity AS cl USING (source_uri)
WHERE c.candidate
ORDER BY c.source_uri;
