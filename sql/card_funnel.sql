-- Where the videos stopped, per source and overall ('all'): the funnel of the dataset card.
-- Inputs: lineage.
SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END AS source, status, stage,
       count(*) AS videos, round(coalesce(sum(duration_s), 0) / 3600, 6) AS hours
FROM (SELECT coalesce(source, 'default') AS source, status, stage, duration_s FROM lineage)
GROUP BY GROUPING SETS ((source, status, stage), (status, stage))
ORDER BY source = 'all', source, videos DESC, stage;
