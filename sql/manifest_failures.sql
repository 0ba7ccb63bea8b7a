-- Most common failure reasons, with paths and numbers stripped so like groups with like.
SELECT
    trim(regexp_replace(regexp_replace(error, '\(to [^)]*\)|of \S+$', ''), '\d+', 'N', 'g')) AS reason,
    count(*) AS videos,
    min(source_uri) AS example
FROM video_manifest
WHERE status = 'failed'
GROUP BY reason
ORDER BY videos DESC, reason
LIMIT $limit;
