-- Captions people judged, one row per reviewer and clip: a label on a clip, or on its video (it judges every
-- clip's caption), is bad when tagged 'bad caption' and good when labelled good without that tag (a video bad
-- for another reason says nothing about its captions).
-- Inputs: labels (each reviewer's latest good/bad label per item), captions (all shards).
SELECT l.reviewer, c.clip_id, any_value(c.caption) AS caption,
       NOT bool_or(list_contains(l.tags, 'bad caption')) AS good
FROM labels AS l
JOIN captions AS c ON c.status = 'ok' AND (l.item = c.clip_id OR l.item = c.video_id)
WHERE l.label = 'good' OR list_contains(l.tags, 'bad caption')
GROUP BY l.reviewer, c.clip_id
ORDER BY l.reviewer, c.clip_id;
