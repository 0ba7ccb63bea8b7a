-- Histogram of usable videos by resolution class and orientation.
-- The class is taken from the short side so portrait 1080x1920 counts as 1080p.
WITH sized AS (
    SELECT
        least(width, height) AS short_side,
        CASE WHEN width > height THEN 'landscape'
             WHEN width < height THEN 'portrait'
             ELSE 'square' END AS orientation
    FROM video_manifest
    WHERE status = 'ok'
)
SELECT
    CASE
        WHEN short_side >= 2160 THEN '2160p+'
        WHEN short_side >= 1440 THEN '1440p'
        WHEN short_side >= 1080 THEN '1080p'
        WHEN short_side >= 720  THEN '720p'
        WHEN short_side >= 480  THEN '480p'
        WHEN short_side >= 360  THEN '360p'
        ELSE '<360p'
    END AS resolution,
    orientation,
    min(short_side) AS min_short_side,
    count(*) AS videos
FROM sized
GROUP BY ALL
ORDER BY min_short_side DESC, orientation;
