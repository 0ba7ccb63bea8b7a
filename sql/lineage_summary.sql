-- Where videos stopped, for the lineage metadata.
SELECT status, stage, count(*) AS videos
FROM lineage
GROUP BY ALL
ORDER BY videos DESC, status, stage;
