-- Per source (and 'all'), score and side: the distribution of the score over the videos that have it, and its
-- mean over the kept ones. Inputs: a, b (sql/lineage_version.sql rows of each side).
WITH sides AS (
    SELECT 'a' AS side, source, status, aesthetic, temporal, motion, clarity FROM a
    UNION ALL
    SELECT 'b', source, status, aesthetic, temporal, motion, clarity FROM b
),
long AS (
    UNPIVOT (SELECT side, source, status, aesthetic, temporal, motion, clarity FROM sides)
    ON aesthetic, temporal, motion, clarity INTO NAME score VALUE value
),
everywhere AS (SELECT * FROM long UNION ALL SELECT side, 'all', status, score, value FROM long)
SELECT * FROM (
    SELECT source, score, side, count(*) AS videos, avg(value) AS mean,
           quantile_cont(value, 0.1) AS p10, quantile_cont(value, 0.5) AS p50, quantile_cont(value, 0.9) AS p90,
           avg(value) FILTER (WHERE status = 'kept') AS kept_mean
    FROM everywhere
    GROUP BY source, score, side
)
ORDER BY source = 'all', source, score, side;
