-- Each score's distribution over the videos that have it, in $bins equal-width bins over both sides' range, as
-- shares: the comparison report's plots. Inputs: a, b (sql/lineage_version.sql rows). Parameters: $bins,
-- $label_a, $label_b (the sides' names in the plots).
WITH long AS (
    UNPIVOT (SELECT $label_a AS series, aesthetic, temporal, motion, clarity FROM a
             UNION ALL SELECT $label_b, aesthetic, temporal, motion, clarity FROM b)
    ON aesthetic, temporal, motion, clarity INTO NAME score VALUE value
),
span AS (SELECT score, min(value) AS lo, (max(value) - min(value)) / $bins AS width FROM long GROUP BY score),
binned AS (
    SELECT l.series, l.score, s.lo, s.width,
           coalesce(least(floor((l.value - s.lo) / nullif(s.width, 0)), $bins - 1), 0)::INTEGER AS bin
    FROM long AS l JOIN span AS s USING (score)
)
SELECT series, score, bin, min(lo) + bin * min(width) AS bin_start, greatest(min(width), 1e-9) AS bin_width,
       count(*) / sum(count(*)) OVER (PARTITION BY series, score) AS share
FROM binned
GROUP BY series, score, bin
ORDER BY score, series, bin;
