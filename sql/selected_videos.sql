-- One shard: candidates that also pass clarity (computed on candidates only).
-- Inputs: candidates (quality_candidates of this shard), clarity (clarity_scores of this shard),
-- thresholds (clarity_threshold).
WITH cut AS (SELECT lower, upper, description, version FROM thresholds WHERE score = 'clarity')
SELECT
    c.video_id, c.source_uri, cl.score AS clarity,
    CASE WHEN cl.status IS NULL THEN 'clarity: not scored'
         WHEN cl.status <> 'ok' THEN 'clarity: ' || cl.error END AS failure,
    CASE WHEN cl.status = 'ok' THEN verdict('clarity', cl.score, cut.lower, cut.upper, cut.description) END
        AS clarity_reason,
    coalesce(cl.status = 'ok'
             AND verdict('clarity', cl.score, cut.lower, cut.upper, cut.description) IS NULL, false) AS selected,
    cut.version AS clarity_version
FROM candidates AS c
CROSS JOIN cut
LEFT JOIN clarity AS cl USING (source_uri)
WHERE c.candidate
ORDER BY c.source_uri;
