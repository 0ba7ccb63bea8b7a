-- Curated clips by resolution class (short side) and by duration band, per source and overall ('all').
-- Inputs: dataset (exports/openvid.parquet).
WITH classed AS (
    SELECT source,
        CASE WHEN least(width, height) >= 2160 THEN '2160p+' WHEN least(width, height) >= 1080 THEN '1080p'
             WHEN least(width, height) >= 720 THEN '720p' WHEN least(width, height) >= 480 THEN '480p'
             ELSE '<480p' END AS resolution,
        CASE WHEN seconds < 2 THEN '<2 s' WHEN seconds < 5 THEN '2-5 s' WHEN seconds < 10 THEN '5-10 s'
             WHEN seconds < 20 THEN '10-20 s' ELSE '20 s+' END AS duration
    FROM dataset
)
SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END AS source, 'resolution' AS kind,
       resolution AS class, count(*) AS clips
FROM classed GROUP BY GROUPING SETS ((source, resolution), (resolution))
UNION ALL
SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END, 'duration', duration, count(*)
FROM classed GROUP BY GROUPING SETS ((source, duration), (duration))
ORDER BY 1, 2, 3;
