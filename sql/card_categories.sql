-- The card's category chart: each pool video's zero-shot category, counted in the pool and in the kept set,
-- per source and overall ('all'), with its share of that (source, part).
-- Inputs: videos (lineage: video_id, source, status, stage), classified (video_id, category).
WITH tagged AS (
    SELECT coalesce(v.source, 'default') AS source, v.status, c.category
    FROM videos AS v JOIN classified AS c USING (video_id)
    WHERE in_pool(v.status, v.stage)
),
parts AS (
    SELECT source, 'pool' AS part, category FROM tagged
    UNION ALL SELECT source, 'curated', category FROM tagged WHERE status = 'kept'
),
counted AS (
    SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END AS source, part, category,
           count(*) AS videos
    FROM parts
    GROUP BY GROUPING SETS ((source, part, category), (part, category))
)
SELECT *, round(videos / sum(videos) OVER (PARTITION BY source, part), 4) AS share
FROM counted
ORDER BY source = 'all', source, part, videos DESC, category;
