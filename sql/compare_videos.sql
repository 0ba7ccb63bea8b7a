-- Every input video whose fate differs between two recipe versions (or two data roots of the same sources), one
-- row each, keyed by its source file: 'entered' or 'left' the dataset, 'moved' (dropped or failed in both, at
-- another stage or for another reason), 'recaptioned' (kept in both, its kept clips or their captions changed),
-- 'new' or 'gone' (listed by one side only). Unchanged videos are not listed.
-- Inputs: a, b (sql/lineage_version.sql rows of each side).
WITH joined AS (
    SELECT coalesce(b.source_uri, a.source_uri) AS source_uri, coalesce(b.video_id, a.video_id) AS video_id,
           coalesce(b.source, a.source) AS source,
           a.status AS status_a, a.stage AS stage_a, a.reason AS reason_a,
           b.status AS status_b, b.stage AS stage_b, b.reason AS reason_b,
           a.clips AS clips_a, b.clips AS clips_b, a.captioned AS captioned_a, b.captioned AS captioned_b,
           a.caption_digest IS DISTINCT FROM b.caption_digest AS captions_differ,
           coalesce(b.duration_s, a.duration_s) AS duration_s,
           a.aesthetic AS aesthetic_a, b.aesthetic AS aesthetic_b, a.temporal AS temporal_a, b.temporal AS temporal_b,
           a.motion AS motion_a, b.motion AS motion_b, a.clarity AS clarity_a, b.clarity AS clarity_b,
           a.source_uri IS NULL AS only_b, b.source_uri IS NULL AS only_a
    FROM a FULL OUTER JOIN b USING (source_uri)
),
judged AS (
    SELECT *,
        CASE
            WHEN only_b THEN 'new'
            WHEN only_a THEN 'gone'
            WHEN status_a <> 'kept' AND status_b = 'kept' THEN 'entered'
            WHEN status_a = 'kept' AND status_b <> 'kept' THEN 'left'
            WHEN status_a <> 'kept' AND (status_a, stage_a, reason_a) IS DISTINCT FROM (status_b, stage_b, reason_b)
                THEN 'moved'
            WHEN status_a = 'kept' AND (clips_a IS DISTINCT FROM clips_b OR captioned_a IS DISTINCT FROM captioned_b
                                        OR captions_differ)
                THEN 'recaptioned'
        END AS change
    FROM joined
)
SELECT change, source, video_id, source_uri, status_a, stage_a, reason_a, status_b, stage_b, reason_b,
       clips_a, clips_b, captioned_a, captioned_b, duration_s,
       aesthetic_a, aesthetic_b, temporal_a, temporal_b, motion_a, motion_b, clarity_a, clarity_b
FROM judged
WHERE change IS NOT NULL
ORDER BY change, source, source_uri;
