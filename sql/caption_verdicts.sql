-- Every ok caption's P(good caption) judged by the content rule filters.caption_quality: reason is set for a
-- caption the rule drops (lineage and the exports leave that clip out).
-- Inputs: scored (clip_id, video_id, caption_quality), filters (the content rules; its caption_quality row).
SELECT s.clip_id, s.video_id, s.caption_quality,
       content_verdict('caption_quality', s.caption_quality, f.lower, f.upper, f.description, f.below, f.above)
           AS reason
FROM scored AS s
LEFT JOIN (SELECT * FROM filters WHERE measure = 'caption_quality') AS f ON true
ORDER BY s.clip_id;
