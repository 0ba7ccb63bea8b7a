-- Quality tiers of the curated dataset (MiraData-style): every clip in exactly one tier.
-- Each score in the recipe's exports.tier_by ($w_<score> = 1) becomes a percent rank over the dataset's
-- clips (0 = worst, 1 = best; a missing score ranks worst); their mean is the combined rank, and
-- tier = 1 + floor(share of clips ranked above it * $tiers): tier 1 holds the best. Clips with equal
-- combined ranks (the clips of one video share its scores) share a tier.
-- Inputs: dataset (exports/openvid.parquet).
WITH ranked AS (
    SELECT *,
        coalesce(percent_rank() OVER (ORDER BY aesthetic NULLS FIRST), 0) AS r_aesthetic,
        coalesce(percent_rank() OVER (ORDER BY clarity NULLS FIRST), 0) AS r_clarity,
        coalesce(percent_rank() OVER (ORDER BY temporal NULLS FIRST), 0) AS r_temporal,
        coalesce(percent_rank() OVER (ORDER BY motion NULLS FIRST), 0) AS r_motion
    FROM (SELECT *, "aesthetic score" AS aesthetic, "temporal consistency score" AS temporal,
                 "motion score" AS motion FROM dataset)
),
combined AS (
    SELECT *,
        ($w_aesthetic * r_aesthetic + $w_clarity * r_clarity + $w_temporal * r_temporal + $w_motion * r_motion)
            / ($w_aesthetic + $w_clarity + $w_temporal + $w_motion) AS combined_rank
    FROM ranked
)
SELECT * EXCLUDE (aesthetic, temporal, motion, r_aesthetic, r_clarity, r_temporal, r_motion),
    'tier_' || CAST(1 + floor((rank() OVER (ORDER BY combined_rank DESC) - 1) * $tiers / count(*) OVER ()) AS INTEGER)
        AS tier
FROM combined
ORDER BY combined_rank DESC, clip_id;
