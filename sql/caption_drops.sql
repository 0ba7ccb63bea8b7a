-- Every clip a caption rule drops, with why: the caption filter's verdicts (caption_scores) and the caption
-- checks' drops (caption_checks of every shard: filters.caption_checks, filters.defects, filters.content_types).
-- A clip dropped by both is listed twice. Inputs: scores (caption_scores), checks (caption_checks).
SELECT clip_id, video_id, reason FROM scores WHERE reason IS NOT NULL
UNION ALL
SELECT clip_id, video_id, reason FROM checks WHERE reason IS NOT NULL
ORDER BY clip_id;
