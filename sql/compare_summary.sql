-- The differences of two versions by what changed, where and why, with the hours they carry: a video that left
-- is listed by where it stopped in the second version, one that entered by where it had stopped in the first.
-- Reasons are grouped by their kind: every number in them is '#' ('aesthetic # < # (web: top #%)'), so the
-- summary has a few rows whatever the number of videos (each video's own reason is in the differences).
-- Inputs: differences (sql/compare_videos.sql).
SELECT change, source,
       CASE WHEN change IN ('entered', 'gone') THEN stage_a ELSE stage_b END AS stage,
       regexp_replace(CASE WHEN change IN ('entered', 'gone') THEN reason_a ELSE reason_b END,
                      '-?[0-9]+([.][0-9]+)?(e[-+]?[0-9]+)?', '#', 'g') AS reason,
       count(*) AS videos, round(coalesce(sum(duration_s), 0) / 3600, 6) AS hours
FROM differences
GROUP BY ALL
ORDER BY change, source, videos DESC, stage, reason;
