-- The differences of two versions by what changed, where and why, with the hours they carry: a video that left
-- is listed by where it stopped in the second version, one that entered by where it had stopped in the first.
-- Inputs: differences (sql/compare_videos.sql).
SELECT change, source,
       CASE WHEN change IN ('entered', 'gone') THEN stage_a ELSE stage_b END AS stage,
       CASE WHEN change IN ('entered', 'gone') THEN reason_a ELSE reason_b END AS reason,
       count(*) AS videos, round(coalesce(sum(duration_s), 0) / 3600, 6) AS hours
FROM differences
GROUP BY ALL
ORDER BY change, source, videos DESC, stage, reason;
