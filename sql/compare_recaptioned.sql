-- The first 50 videos kept in both versions whose kept clips or captions changed (every one is in the
-- differences parquet). Inputs: differences (sql/compare_videos.sql).
SELECT source, video_id, source_uri, clips_a, clips_b, captioned_a, captioned_b
FROM differences
WHERE change = 'recaptioned'
ORDER BY source, source_uri
LIMIT 50;
