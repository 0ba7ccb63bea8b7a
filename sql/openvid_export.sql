-- The curated dataset: the OpenVid-1M release columns first, then the extra columns.
-- Until clips exist, each kept video is one clip spanning the whole video.
-- Inputs: lineage; $hd_only keeps sources of at least 1920x1080, landscape.
SELECT
    regexp_extract(source_uri, '[^/]+$')  AS "video",
    ''                                    AS "caption",
    aesthetic                             AS "aesthetic score",
    motion                                AS "motion score",
    temporal                              AS "temporal consistency score",
    ''                                    AS "camera motion",
    num_frames                            AS "frame",
    fps                                   AS "fps",
    duration_s                            AS "seconds",
    video_id, source_uri, shard, clarity, width, height,
    0.0::DOUBLE                           AS clip_start_s,
    duration_s                            AS clip_end_s,
    quality_version, clarity_version
FROM lineage
WHERE status = 'kept'
  AND (NOT $hd_only OR (width >= 1920 AND height >= 1080 AND width > height))
ORDER BY shard, position;
