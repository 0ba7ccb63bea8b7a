-- One shard: S_A ∩ S_T ∩ S_M, less near-duplicates and videos a content rule drops. One row per video that has
-- the three score rows; a video whose scoring failed carries that failure, a video judged carries every reason
-- it fell short.
-- A motion row 'skipped' (the codec-motion pre-filter kept the video from the flow network) is a drop, its reason
-- the pre-filter's.
-- Inputs: aesthetic, temporal, motion, content, codec (this shard's score tables; codec: codec_motion), thresholds (score_thresholds: the
-- rows of this shard's source; a step the source skips has no cut lines, so it passes every video), duplicates
-- (near_duplicates: video_id, duplicate_of, cosine), filters (the content rules: measure, lower, upper,
-- description, below, above), suitability (suitability_scores: the learned filter's P(good), judged by the
-- content rule of the same name).
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
content_verdicts AS (
    -- Long form, one row per (video, measure) with a value: a measure not taken (NULL) is not judged.
    SELECT u.source_uri,
           string_agg(content_verdict(u.measure, u.value, f.lower, f.upper, f.description, f.below, f.above), '; '
                      ORDER BY f.measure) AS content_reason
    FROM (UNPIVOT (SELECT source_uri, brightness, dark_share, bright_share, contrast, colourfulness, text_area, nsfw
                   FROM content WHERE status = 'ok'
                   UNION ALL BY NAME
                   SELECT source_uri, score AS suitability FROM suitability WHERE status = 'ok')
          ON COLUMNS(* EXCLUDE source_uri) INTO NAME measure VALUE value) AS u
    JOIN filters AS f USING (measure)
    GROUP BY u.source_uri
),
scored AS (
    SELECT
        a.video_id, a.source_uri,
        a.score AS aesthetic, t.score AS temporal, m.score AS motion,
        concat_ws('; ',
            CASE WHEN a.status <> 'ok' THEN 'aesthetic: ' || a.error END,
            CASE WHEN t.status <> 'ok' THEN 'temporal: ' || t.error END,
            CASE WHEN m.status NOT IN ('ok', 'skipped') THEN 'motion: ' || m.error END,
            CASE WHEN ct.status <> 'ok' THEN 'content: ' || ct.error END) AS failure,
        (a.status = 'ok' AND t.status = 'ok' AND m.status IN ('ok', 'skipped') AND coalesce(ct.status = 'ok', true))
            AS all_ok,
        CASE WHEN m.status = 'skipped' THEN m.error END AS codec_reason,
        cm.score AS codec_motion,
        ct.brightness, ct.dark_share, ct.bright_share, ct.contrast, ct.colourfulness, ct.text_area, ct.nsfw,
        su.score AS suitability, ct.crop_x, ct.crop_y, ct.crop_w, ct.crop_h, ct.bordered,
        cv.content_reason,
        CASE WHEN d.duplicate_of IS NOT NULL
             THEN printf('near-duplicate of %s (cos %.3f)', d.duplicate_of, d.cosine) END AS duplicate_reason
    FROM aesthetic AS a
    JOIN temporal AS t USING (source_uri)
    JOIN motion AS m USING (source_uri)
    LEFT JOIN content AS ct USING (source_uri)
    LEFT JOIN codec AS cm USING (source_uri)
    LEFT JOIN content_verdicts AS cv USING (source_uri)
    LEFT JOIN (SELECT source_uri, score FROM suitability WHERE status = 'ok') AS su USING (source_uri)
    LEFT JOIN duplicates AS d ON d.video_id = a.video_id
    -- videos the manifest rejected never reached scoring
    WHERE NOT (a.status = 'failed' AND starts_with(a.error, 'manifest: '))
)
SELECT
    s.video_id, s.source_uri, s.aesthetic, s.temporal, s.motion, s.codec_motion,
    s.brightness, s.dark_share, s.bright_share, s.contrast, s.colourfulness, s.text_area, s.nsfw, s.suitability,
    s.crop_x, s.crop_y, s.crop_w, s.crop_h, s.bordered,
    nullif(s.failure, '') AS failure,
    CASE WHEN s.all_ok THEN s.duplicate_reason END AS duplicate_reason,
    CASE WHEN s.all_ok THEN s.content_reason END AS content_reason,
    CASE WHEN s.all_ok THEN nullif(concat_ws('; ',
        verdict('aesthetic', s.aesthetic, c.a_lo, c.a_hi, c.a_rule),
        verdict('temporal', s.temporal, c.t_lo, c.t_hi, c.t_rule),
        coalesce(s.codec_reason, verdict('motion', s.motion, c.m_lo, c.m_hi, c.m_rule))), '') END AS quality_reason,
    -- Each filter on its own (the ablation's variants apply some of them): NULL for a video not judged.
    CASE WHEN s.all_ok THEN verdict('aesthetic', s.aesthetic, c.a_lo, c.a_hi, c.a_rule) IS NULL END AS aesthetic_ok,
    CASE WHEN s.all_ok THEN verdict('temporal', s.temporal, c.t_lo, c.t_hi, c.t_rule) IS NULL END AS temporal_ok,
    CASE WHEN s.all_ok THEN s.codec_reason IS NULL AND verdict('motion', s.motion, c.m_lo, c.m_hi, c.m_rule) IS NULL END
        AS motion_ok,
    s.all_ok AND s.duplicate_reason IS NULL AND s.content_reason IS NULL
             AND verdict('aesthetic', s.aesthetic, c.a_lo, c.a_hi, c.a_rule) IS NULL
             AND verdict('temporal', s.temporal, c.t_lo, c.t_hi, c.t_rule) IS NULL
             AND s.codec_reason IS NULL
             AND verdict('motion', s.motion, c.m_lo, c.m_hi, c.m_rule) IS NULL AS candidate,
    c.version AS thresholds_version
FROM scored AS s, cut AS c
ORDER BY s.source_uri;
