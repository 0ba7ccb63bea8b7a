-- The videos of one shard that the codec-motion pre-filter (selection.codec_motion) keeps from the flow network:
-- clearly static, or far too fast, by their motion vectors. A video without usable vectors is never skipped.
-- Inputs: codec (the shard's codec_motion table). Parameters: $lower, $upper (the rule's bounds, NULL = none),
-- $description (the rule as written), $note (what every reason ends with).
SELECT video_id,
       content_verdict('codec_motion', score, $lower, $upper, $description,
                       'static by its motion vectors', 'far too fast by its motion vectors')
           || '; ' || $note AS reason
FROM codec
WHERE status = 'ok'
  AND content_verdict('codec_motion', score, $lower, $upper, $description, '', '') IS NOT NULL
ORDER BY video_id;
