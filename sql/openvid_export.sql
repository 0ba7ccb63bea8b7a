-- The curated dataset: one row per captioned clip of a kept video, the OpenVid-1M release
-- columns first (video = the clip's file name), then the extra columns.
-- Inputs: lineage, clips, captions (all shards), imported (the sources' imported metadata), caption_verdicts
-- (caption_scores: a clip whose caption the caption filter drops is left out);
-- $hd_only keeps clips whose picture is at least 1920x1080, landscape: the picture inside black bars (a
-- 1920x1080 file with 1920x800 of picture is not 1080p), whether or not the clip was cropped. "subset": 'full' for a video that went through every
-- step (the paper's Ours-0.6M path), 'light' for one whose source skips some (the Ours-0.4M path).
-- "conditioned caption" ($conditioned): the caption with the scores appended as Open-Sora 1.2 prompts them
-- (opensora/utils/inference_utils.py, append_score_to_prompts): "<caption> aesthetic score: 5.5. motion score:
-- 10.0. camera motion: pan left." -- a part whose value is missing is left out; the plain caption is unchanged.
WITH clip AS (
    SELECT * FROM clips WHERE status = 'ok'
    QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY clip_uri NULLS LAST) = 1
),
caption AS (
    SELECT * FROM captions
    ANTI JOIN (SELECT clip_id FROM caption_verdicts WHERE reason IS NOT NULL) AS dropped USING (clip_id)
    WHERE status = 'ok'
    QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY caption) = 1
)
SELECT
    c.clip_id || '.mp4'                   AS "video",
    cp.caption                            AS "caption",
    l.aesthetic                           AS "aesthetic score",
    l.motion                              AS "motion score",
    l.temporal                            AS "temporal consistency score",
    coalesce(cp.camera_motion, '')        AS "camera motion",
    c.num_frames                          AS "frame",
    c.fps                                 AS "fps",
    c.end_s - c.start_s                   AS "seconds",
    c.clip_id, l.video_id, l.source_uri, l.source,
    CASE WHEN l.not_applied IS NULL THEN 'full' ELSE 'light' END AS subset,
    l.not_applied, im.category, im.source_id,
    l.shard, l.clarity, c.width, c.height, c.crop,
    c.start_s                             AS clip_start_s,
    c.end_s                               AS clip_end_s,
    c.start_frame, c.end_frame, c.clip_uri,
    cp.structured, cp.truncated,
    cp.model                              AS caption_model,
    CASE WHEN $conditioned THEN
        cp.caption
        || coalesce(' aesthetic score: ' || printf('%.1f', l.aesthetic) || '.', '')
        || coalesce(' motion score: ' || printf('%.1f', l.motion) || '.', '')
        || coalesce(' camera motion: ' || nullif(cp.camera_motion, '') || '.', '')
    END                                   AS "conditioned caption",
    l.quality_version, l.clarity_version
FROM lineage AS l
JOIN clip AS c ON c.video_id = l.video_id
JOIN caption AS cp ON cp.clip_id = c.clip_id
LEFT JOIN (SELECT * FROM imported QUALIFY row_number() OVER (PARTITION BY source_uri) = 1) AS im
    ON im.source_uri = l.source_uri
WHERE l.status = 'kept'
  AND (NOT $hd_only OR (least(c.width, coalesce(l.picture_width, c.width)) >= 1920
                        AND least(c.height, coalesce(l.picture_height, c.height)) >= 1080 AND c.width > c.height))
ORDER BY l.shard, l.position, c.start_frame;
