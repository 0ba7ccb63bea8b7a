-- One shard: the videos each ablation variant keeps, judged by the recipe's own cut lines (nothing re-scored).
-- A video is in a variant when it passes every filter the variant applies; videos that failed scoring, are
-- duplicates or that a content rule drops are in no variant (those rules are not the paper's steps).
-- Inputs: candidates (quality_candidates of this shard: aesthetic_ok, temporal_ok, motion_ok), clarity (clarity
-- scores of this shard: the recipe's and the ablation's own), thresholds (clarity_threshold: this shard's
-- source's row), variants (variant, filters, aesthetic, temporal, motion, clarity: whether each applies).
-- $clarity_applied false: the source skips clarity (the recipe), so it passes every video. $clarity_known false:
-- clarity is taken as passed (which videos a variant would keep if clarity allowed: the ones to score).
WITH cut AS (
    SELECT any_value(lower) AS lower, any_value(upper) AS upper, any_value(description) AS description
    FROM thresholds WHERE score = 'clarity'
),
judged AS (
    SELECT c.video_id, c.source_uri, c.aesthetic_ok, c.temporal_ok, c.motion_ok,
           CASE WHEN NOT $clarity_applied OR NOT $clarity_known THEN true
                ELSE coalesce(cl.status = 'ok'
                              AND verdict('clarity', cl.score, cut.lower, cut.upper, cut.description) IS NULL, false)
           END AS clarity_ok
    FROM candidates AS c
    CROSS JOIN cut
    LEFT JOIN (SELECT * FROM clarity QUALIFY row_number() OVER (PARTITION BY source_uri ORDER BY status) = 1) AS cl
        USING (source_uri)
    WHERE c.failure IS NULL AND c.duplicate_reason IS NULL AND c.content_reason IS NULL
)
SELECT v.variant, v.filters, j.video_id, j.source_uri
FROM judged AS j
JOIN variants AS v
  ON (NOT v.aesthetic OR j.aesthetic_ok) AND (NOT v.temporal OR j.temporal_ok)
 AND (NOT v.motion OR j.motion_ok) AND (NOT v.clarity OR j.clarity_ok)
ORDER BY v.variant, j.source_uri;
