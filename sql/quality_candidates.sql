-- One shard: S_A ∩ S_T ∩ S_M. One row per video that has the three score rows; a video whose
-- scoring failed carries that failure, a video judged carries every reason it fell short.
-- Inputs: aesthetic, temporal, motion (this shard's score tables), thresholds (score_thresholds: the rows of
-- this shard's source; a step the source skips has no cut lines, so it passes every video).
WITH cut AS (
    SELECT
        max(lower) FILTER (WHERE score = 'aesthetic') AS a_lo, max(upper) FILTER (WHERE score = 'aesthetic') AS a_hi,
        max(description) FILTER (WHERE score = 'aesthetic') AS a_rule,
        max(lower) FILTER (WHERE score = 'temporal')  AS t_lo, max(upper) FILTER (WHERE score = 'temporal')  AS t_hi,
        max(description) FILTER (WHERE score = 'temporal') AS t_rule,
        max(lower) FILTER (WHERE score = 'motion')    AS m_lo, max(upper) FILTER (WHERE score = 'motion')    AS m_hi,
        max(description) FILTER (WHERE score = 'motion') AS m_rule,
        any_value(version) AS version
    FROM thresholds
),
scored AS (
    SELECT
        a.video_id, a.source_uri,
        a.score AS aesthetic, t.score AS temporal, m.score AS motion,
        concat_ws('; ',
            CASE WHEN a.status <> 'ok' THEN 'aesthetic: ' || a.error END,
            CASE WHEN t.status <> 'ok' THEN 'temporal: ' || t.error END,
            CASE WHEN m.status <> 'ok' THEN 'motion: ' || m.error END) AS failure,
        (a.status = 'ok' AND t.status = 'ok' AND m.status = 'ok') AS all_ok
    FROM aesthetic AS a
    JOIN temporal AS t USING (source_uri)
    JOIN motion AS m USING (source_uri)
    -- videos the manifest rejected never reached scoring
    WHERE NOT (a.status = 'failed' AND starts_with(a.error, 'manifest: '))
)
SELECT
    s.video_id, s.source_uri, s.aesthetic, s.temporal, s.motion,
    nullif(s.failure, '') AS failure,
    CASE WHEN s.all_ok THEN nullif(concat_ws('; ',
        verdict('aesthetic', s.aesthetic, c.a_lo, c.a_hi, c.a_rule),
        verdict('temporal', s.temporal, c.t_lo, c.t_hi, c.t_rule),
        verdict('motion', s.motion, c.m_lo, c.m_hi, c.m_rule)), '') END AS quality_reason,
    s.all_ok AND verdict('aesthetic', s.aesthetic, c.a_lo, c.a_hi, c.a_rule) IS NULL
             AND verdict('temporal', s.temporal, c.t_lo, c.t_hi, c.t_rule) IS NULL
             AND verdict('motion', s.motion, c.m_lo, c.m_hi, c.m_rule) IS NULL AS candidate,
    c.version AS thresholds_version
FROM scored AS s, cut AS c
ORDER BY s.source_uri;
