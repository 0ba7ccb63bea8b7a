-- Every input video exactly once: kept, dropped (at which stage, why) or failed, with every score
-- and content measure it has, its clip counts and the threshold versions it was judged by. A video whose content
-- already appeared earlier (by shard, then position) is a duplicate and is dropped, as is a near-duplicate
-- (candidates' duplicate_reason); a content rule's drop is stage 'content'. Kept means
-- in the dataset: selected, clipped, and at least one clip captioned.
-- Inputs: manifest, candidates, selected, clips, captions (all shards), thresholds (score + clarity),
-- sources (per shard: its named source and the steps the recipe does not apply to it), caption_verdicts
-- (sql/caption_drops.sql: clip_id, reason; a clip whose caption the caption filter or a caption check drops is
-- not captioned).
WITH m AS (
    SELECT *,
        CASE WHEN status = 'ok' THEN row_number() OVER (PARTITION BY video_id, status ORDER BY shard, position) END
            AS copy_no,
        first_value(source_uri) OVER (PARTITION BY video_id, status ORDER BY shard, position) AS first_uri
    FROM manifest
),
versions AS (
    SELECT max(version) FILTER (WHERE score <> 'clarity') AS quality_version,
           max(version) FILTER (WHERE score = 'clarity')  AS clarity_version
    FROM thresholds
),
clipped AS (
    -- A shard re-listing a video would repeat its clips: count distinct clips.
    SELECT video_id,
           bool_or(status = 'failed')                               AS clip_failed,
           count(DISTINCT clip_id) FILTER (WHERE status = 'ok')      AS clips,
           min(error) FILTER (WHERE status <> 'ok')                  AS clip_error
    FROM clips
    GROUP BY video_id
),
captioned AS (
    SELECT c.video_id,
           count(DISTINCT c.clip_id) FILTER (WHERE c.status = 'ok' AND v.reason IS NULL) AS captioned,
           min(c.error) FILTER (WHERE c.status <> 'ok')                                 AS caption_error,
           min(v.reason)                                                                 AS caption_dropped,
           -- What its kept clips say: a recipe comparison finds the videos whose captions changed by this.
           md5(string_agg(DISTINCT c.clip_id || chr(31) || c.caption, chr(30) ORDER BY c.clip_id || chr(31) || c.caption)
               FILTER (WHERE c.status = 'ok' AND v.reason IS NULL))                  AS caption_digest
    FROM captions AS c
    LEFT JOIN (SELECT clip_id, reason FROM caption_verdicts WHERE reason IS NOT NULL) AS v USING (clip_id)
    GROUP BY c.video_id
),
judged AS (
    -- One decision tree: where each video stopped, with what status and why.
    SELECT
        m.video_id, m.source_uri, m.shard, m.position,
        CASE
            WHEN m.status <> 'ok' AND starts_with(m.error, 'duplicate content of ')
                THEN {'status': 'dropped', 'stage': 'dedup',    'reason': m.error}
            WHEN m.status <> 'ok'
                THEN {'status': 'failed',  'stage': 'probe',    'reason': m.error}
            WHEN m.copy_no > 1
                THEN {'status': 'dropped', 'stage': 'dedup',    'reason': 'duplicate content of ' || m.first_uri}
            WHEN c.source_uri IS NULL
                THEN {'status': 'pending', 'stage': 'scoring',  'reason': 'not scored yet'}
            WHEN c.failure IS NOT NULL
                THEN {'status': 'failed',  'stage': 'scoring',  'reason': c.failure}
            WHEN c.duplicate_reason IS NOT NULL
                THEN {'status': 'dropped', 'stage': 'dedup',    'reason': c.duplicate_reason}
            WHEN c.content_reason IS NOT NULL
                THEN {'status': 'dropped', 'stage': 'content',  'reason': c.content_reason}
            WHEN NOT c.candidate
                THEN {'status': 'dropped', 'stage': 'quality',  'reason': c.quality_reason}
            WHEN s.source_uri IS NULL
                THEN {'status': 'pending', 'stage': 'clarity',  'reason': 'clarity not scored yet'}
            WHEN s.failure IS NOT NULL
                THEN {'status': 'failed',  'stage': 'clarity',  'reason': s.failure}
            WHEN NOT s.selected
                THEN {'status': 'dropped', 'stage': 'clarity',  'reason': s.clarity_reason}
            WHEN cl.video_id IS NULL
                THEN {'status': 'pending', 'stage': 'clips',    'reason': 'selected, not clipped yet'}
            WHEN cl.clip_failed
                THEN {'status': 'failed',  'stage': 'clips',    'reason': cl.clip_error}
            WHEN cl.clips = 0
                THEN {'status': 'dropped', 'stage': 'clips',    'reason': cl.clip_error}
            WHEN cp.video_id IS NULL
                THEN {'status': 'pending', 'stage': 'captions', 'reason': 'clipped, not captioned yet'}
            WHEN cp.captioned = 0 AND cp.caption_error IS NULL AND cp.caption_dropped IS NOT NULL
                THEN {'status': 'dropped', 'stage': 'captions', 'reason': cp.caption_dropped}
            WHEN cp.captioned = 0
                THEN {'status': 'failed',  'stage': 'captions', 'reason': cp.caption_error}
            ELSE      {'status': 'kept',    'stage': 'captioned',
                       'reason': printf('%d of %d clips captioned', cp.captioned, cl.clips)}
        END AS verdict,
        c.aesthetic, c.temporal, c.motion, c.codec_motion, s.clarity, cl.clips, cp.captioned, cp.caption_digest,
        c.brightness, c.dark_share, c.bright_share, c.contrast, c.colourfulness, c.text_area, c.nsfw, c.suitability,
        c.crop_w, c.crop_h, c.bordered,
        m.width, m.height, m.fps, m.num_frames, m.duration_s, src.source, src.not_applied
    FROM m
    LEFT JOIN sources AS src ON src.shard = m.shard
    LEFT JOIN candidates AS c USING (source_uri)
    LEFT JOIN selected AS s USING (source_uri)
    LEFT JOIN clipped AS cl ON cl.video_id = m.video_id
    LEFT JOIN captioned AS cp ON cp.video_id = m.video_id
)
SELECT
    j.video_id, j.source_uri, j.shard, j.position, coalesce(j.source, 'default') AS source,
    j.verdict.status AS status, j.verdict.stage AS stage, j.verdict.reason AS reason,
    j.aesthetic, j.temporal, j.motion, j.codec_motion, j.clarity,
    coalesce(j.clips, 0) AS clips, coalesce(j.captioned, 0) AS captioned, j.caption_digest,
    j.brightness, j.dark_share, j.bright_share, j.contrast, j.colourfulness, j.text_area, j.nsfw, j.suitability,
    j.crop_w AS picture_width, j.crop_h AS picture_height, j.bordered,
    j.width, j.height, j.fps, j.num_frames, j.duration_s,
    j.not_applied,  -- the steps this video's source skips (a pass-through, never a silent gap)
    v.quality_version, v.clarity_version
FROM judged AS j, versions AS v
ORDER BY j.shard, j.position;
