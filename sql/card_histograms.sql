-- The distributions of the dataset card (the paper's Figures 2-3): each metric binned into $bins equal-width
-- bins over its whole range, counted for the pool (every decodable video) and the curated set, per source
-- and overall ('all'). Video metrics: aesthetic, motion, temporal, clarity; clip metrics (curated clips
-- only): caption words, clip seconds.
-- Inputs: lineage, dataset (exports/openvid.parquet).
WITH pool AS (
    SELECT coalesce(source, 'default') AS source, status, aesthetic, motion, temporal, clarity
    FROM lineage
    WHERE in_pool(status, stage)
),
video_values AS (
    UNPIVOT (SELECT source, status, aesthetic, motion, temporal, clarity FROM pool)
    ON aesthetic, motion, temporal, clarity INTO NAME metric VALUE value
),
clip_values AS (
    UNPIVOT (SELECT source, CAST(len(string_split(trim(caption), ' ')) AS DOUBLE) AS "caption words",
                    CAST(seconds AS DOUBLE) AS "clip seconds" FROM dataset)
    ON "caption words", "clip seconds" INTO NAME metric VALUE value
),
tagged AS (
    SELECT source, 'pool' AS part, metric, value FROM video_values
    UNION ALL SELECT source, 'curated', metric, value FROM video_values WHERE status = 'kept'
    UNION ALL SELECT source, 'curated', metric, value FROM clip_values
),
everywhere AS (
    SELECT * FROM tagged WHERE value IS NOT NULL
    UNION ALL SELECT 'all', part, metric, value FROM tagged WHERE value IS NOT NULL
),
span AS (SELECT metric, min(value) AS lo, (max(value) - min(value)) / $bins AS width FROM everywhere GROUP BY metric),
binned AS (
    SELECT e.source, e.part, e.metric, s.lo, s.width,
           coalesce(least(floor((e.value - s.lo) / nullif(s.width, 0)), $bins - 1), 0)::INTEGER AS bin
    FROM everywhere AS e JOIN span AS s USING (metric)
)
SELECT source, part, metric, bin, min(lo) + bin * min(width) AS bin_start,
       greatest(min(width), 1e-9) AS bin_width, count(*) AS count
FROM binned
GROUP BY source, part, metric, bin
ORDER BY metric, source, part, bin;
