-- Which video of each near-duplicate group stays: the largest picture (after black borders are cropped), then
-- the longest, then the most aesthetic, then the smallest video id (so the same pool always keeps the same
-- videos). One row per video that goes: video_id, duplicate_of (the group's keeper), group_size.
-- Inputs: groups (video_id, "group"), manifest, content (content_scores) and aesthetic (aesthetic_scores), all
-- shards.
WITH videos AS (
    SELECT g.video_id, g."group",
           coalesce(any_value(c.crop_w) * any_value(c.crop_h), any_value(m.width) * any_value(m.height)) AS pixels,
           any_value(m.duration_s) AS duration_s, any_value(a.score) AS aesthetic
    FROM groups AS g
    LEFT JOIN manifest AS m ON m.video_id = g.video_id AND m.status = 'ok'
    LEFT JOIN content AS c ON c.video_id = g.video_id AND c.status = 'ok'
    LEFT JOIN aesthetic AS a ON a.video_id = g.video_id AND a.status = 'ok'
    GROUP BY g.video_id, g."group"
),
ranked AS (
    SELECT *,
           first_value(video_id) OVER w AS keeper,
           count(*) OVER (PARTITION BY "group") AS group_size
    FROM videos
    WINDOW w AS (PARTITION BY "group"
                 ORDER BY pixels DESC NULLS LAST, duration_s DESC NULLS LAST, aesthetic DESC NULLS LAST, video_id)
)
SELECT video_id, keeper AS duplicate_of, group_size
FROM ranked
WHERE video_id <> keeper
ORDER BY video_id;
