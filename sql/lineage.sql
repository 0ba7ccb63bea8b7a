-- Every input video exactly once: kept, dropped (at which stage, why) or failed, with every score
-- it has and the threshold versions it was judged by. A video whose content already appeared
-- earlier (by shard, then position) is a duplicate and is dropped.
-- Inputs: manifest, candidates, selected (all shards), thresholds (score + clarity thresholds).
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
            WHEN NOT c.candidate
                THEN {'status': 'dropped', 'stage': 'quality',  'reason': c.quality_reason}
            WHEN s.source_uri IS NULL
                THEN {'status': 'pending', 'stage': 'clarity',  'reason': 'clarity not scored yet'}
            WHEN s.failure IS NOT NULL
                THEN {'status': 'failed',  'stage': 'clarity',  'reason': s.failure}
            WHEN s.selected
                THEN {'status': 'kept',    'stage': 'selected', 'reason': 'passed every filter'}
            ELSE      {'status': 'dropped', 'stage': 'clarity',  'reason': s.clarity_reason}
        END AS verdict,
        c.aesthetic, c.temporal, c.motion, s.clarity,
        m.width, m.height, m.fps, m.num_frames, m.duration_s
    FROM m
    LEFT JOIN candidates AS c USING (source_uri)
    LEFT JOIN selected AS s USING (source_uri)
)
SELECT
    j.video_id, j.source_uri, j.shard, j.position,
    j.verdict.status AS status, j.verdict.stage AS stage, j.verdict.reason AS reason,
    j.aesthetic, j.temporal, j.motion, j.clarity,
    j.width, j.height, j.fps, j.num_frames, j.duration_s,
    v.quality_version, v.clarity_version
FROM judged AS j, versions AS v
ORDER BY j.shard, j.position;
