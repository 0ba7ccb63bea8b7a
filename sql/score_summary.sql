-- Totals and distribution of one score table (any asset with status/score columns).
SELECT
    count(*)                                   AS videos,
    count(*) FILTER (WHERE status = 'ok')      AS ok,
    count(*) FILTER (WHERE status = 'failed')  AS failed,
    avg(score)                                 AS mean,
    quantile_cont(score, 0.1)                  AS p10,
    quantile_cont(score, 0.5)                  AS p50,
    quantile_cont(score, 0.9)                  AS p90,
    min(score)                                 AS min,
    max(score)                                 AS max
FROM scores;
