-- One row per quality tier: its size and the ranges of the scores it was ranked by.
-- Inputs: tiered (quality_tiers.sql's result).
SELECT
    tier,
    count(*)                                   AS clips,
    count(DISTINCT video_id)                   AS videos,
    round(sum(seconds) / 3600, 4)              AS hours,
    round(min(combined_rank), 4)               AS min_combined_rank,
    round(max(combined_rank), 4)               AS max_combined_rank,
    round(min("aesthetic score"), 3)           AS min_aesthetic,
    round(max("aesthetic score"), 3)           AS max_aesthetic,
    round(min(clarity), 4)                     AS min_clarity,
    round(max(clarity), 4)                     AS max_clarity
FROM tiered
GROUP BY tier
ORDER BY CAST(split_part(tier, '_', 2) AS INTEGER);
