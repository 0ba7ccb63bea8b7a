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
    SELECT
        m.video_id, m.source_uri, m.shard, m.position,
        CASE
            WHEN m.status <> 'ok' AND starts_with(m.error, 'duplicate content of ') THEN 'dropped'
            WHEN m.status <> 'ok' THEN 'failed'
            WHEN m.copy_no > 1 THEN 'dropped'
            WHEN c.source_uri IS NULL THEN 'pending'
            WHEN c.failure IS NOT NULL THEN 'failed'
            WHEN NOT c.candidate THEN 'dropped'
            WHEN s.source_uri IS NULL THEN 'pending'
            WHEN s.failure IS NOT NULL THEN 'failed'
            WHEN s.selected THEN 'kept'
            ELSE 'dropped'
        END AS status,
        CASE
            WHEN m.status <> 'ok' AND starts_with(m.error, 'duplicate content of ') THEN 'dedup'
            WHEN m.status <> 'ok' THEN 'probe'
            WHEN m.copy_no > 1 THEN 'dedup'
            WHEN c.source_uri IS NULL THEN 'scoring'
            WHEN c.failure IS NOT NULL THEN 'scoring'
            WHEN NOT c.candidate THEN 'quality'
            WHEN s.source_uri IS NULL OR s.failure IS NOT NULL THEN 'clarity'
            WHEN s.selected THEN 'selected'
            ELSE 'clarity'
        END AS stage,
        CASE
            WHEN m.status <> 'ok' THEN m.error
            WHEN m.copy_no > 1 THEN 'duplicate content of ' || m.first_uri
            WHEN c.source_uri IS NULL THEN 'not scored yet'
            WHEN c.failure IS NOT NULL THEN c.failure
            WHEN NOT c.candidate THEN c.quality_reason
            WHEN s.source_uri IS NULL THEN 'clarity not scored yet'
            WHEN s.failure IS NOT NULL THEN s.failure
            WHEN s.selected THEN 'passed every filter'
            ELSE s.clarity_reason
        END AS reason,
        c.aesthetic, c.temporal, c.motion, s.clarity,
        m.width, m.height, m.fps, m.num_frames, m.duration_s
    FROM m
    LEFT JOIN candidates AS c USING (source_uri)
    LEFT JOIN selected AS s USING (source_uri)
)
SELECT j.*, v.quality_version, v.clarity_version
FROM judged AS j, versions AS v
ORDER BY j.shard, j.position;
