-- Per source and overall ('all'): kept videos and hours in each version, and what entered and left.
-- Inputs: a, b (sql/lineage_version.sql rows of each side), differences (sql/compare_videos.sql).
WITH sides AS (
    SELECT source, count(*) FILTER (WHERE status = 'kept') AS kept_a, 0 AS kept_b,
           coalesce(sum(duration_s) FILTER (WHERE status = 'kept'), 0) AS hours_a, 0 AS hours_b
    FROM a GROUP BY source
    UNION ALL
    SELECT source, 0, count(*) FILTER (WHERE status = 'kept'), 0,
           coalesce(sum(duration_s) FILTER (WHERE status = 'kept'), 0)
    FROM b GROUP BY source
),
moves AS (
    SELECT source,
           count(*) FILTER (WHERE change = 'entered') AS entered, count(*) FILTER (WHERE change = 'left') AS left_,
           coalesce(sum(duration_s) FILTER (WHERE change = 'entered'), 0) AS hours_gained,
           coalesce(sum(duration_s) FILTER (WHERE change = 'left'), 0) AS hours_lost,
           count(*) FILTER (WHERE change = 'moved') AS moved, count(*) FILTER (WHERE change = 'recaptioned') AS recaptioned
    FROM differences GROUP BY source
),
per_source AS (
    SELECT source, sum(kept_a) AS kept_a, sum(kept_b) AS kept_b, sum(hours_a) AS hours_a, sum(hours_b) AS hours_b,
           coalesce(any_value(m.entered), 0) AS entered, coalesce(any_value(m.left_), 0) AS "left",
           coalesce(any_value(m.hours_gained), 0) AS hours_gained, coalesce(any_value(m.hours_lost), 0) AS hours_lost,
           coalesce(any_value(m.moved), 0) AS moved, coalesce(any_value(m.recaptioned), 0) AS recaptioned
    FROM sides LEFT JOIN moves AS m USING (source)
    GROUP BY source
)
SELECT source, kept_a::BIGINT AS kept_a, kept_b::BIGINT AS kept_b, entered::BIGINT AS entered,
       "left"::BIGINT AS "left", moved::BIGINT AS moved, recaptioned::BIGINT AS recaptioned,
       round(hours_a / 3600, 6) AS hours_a, round(hours_b / 3600, 6) AS hours_b,
       round(hours_gained / 3600, 6) AS hours_gained, round(hours_lost / 3600, 6) AS hours_lost
FROM (SELECT * FROM per_source
      UNION ALL BY NAME
      SELECT 'all' AS source, sum(kept_a) AS kept_a, sum(kept_b) AS kept_b, sum(entered) AS entered,
             sum("left") AS "left", sum(moved) AS moved, sum(recaptioned) AS recaptioned, sum(hours_a) AS hours_a,
             sum(hours_b) AS hours_b, sum(hours_gained) AS hours_gained, sum(hours_lost) AS hours_lost
      FROM per_source)
ORDER BY source = 'all', source;
