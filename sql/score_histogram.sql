-- Equal-width histogram of one score's ok values, binned in SQL so a plot never loads every row.
WITH ok AS (SELECT score FROM scores WHERE status = 'ok' AND score IS NOT NULL),
     span AS (SELECT min(score) AS lo, max(score) AS hi, (max(score) - min(score)) / $bins AS width FROM ok),
     binned AS (
        SELECT coalesce(least(floor((score - lo) / nullif(width, 0)), $bins - 1), 0)::INTEGER AS bin, lo, width
        FROM ok, span
     )
SELECT bin, min(lo) + bin * min(width) AS bin_start, greatest(min(width), 1e-9) AS bin_width, count(*) AS videos
FROM binned
GROUP BY bin
ORDER BY bin;
