-- The caption checks and defect tags of every checked clip, for the dataset card: per check, defect tag and
-- content type, how many clips it flagged and how many the recipe dropped for it (a dropped clip's reason lists
-- every finding it was dropped for, each led by its name). Inputs: checks (caption_checks, all shards).
WITH c AS (
    SELECT * FROM checks QUALIFY row_number() OVER (PARTITION BY clip_id ORDER BY clip_id) = 1
),
checked AS (
    SELECT clip_id, reason, name, finding
    FROM c UNPIVOT INCLUDE NULLS (finding FOR name IN (empty, too_short, too_long, repetition, truncated, language,
                                                       boilerplate, agreement))
),
tagged AS (
    SELECT clip_id, reason, name, tagged
    FROM (SELECT clip_id, reason, COLUMNS('^defect_') FROM c)
         UNPIVOT INCLUDE NULLS (tagged FOR name IN (COLUMNS('^defect_')))
)
SELECT 'check' AS kind, name,
       count(*) FILTER (WHERE finding IS NOT NULL) AS flagged,
       count(*) FILTER (WHERE regexp_matches(coalesce(reason, ''), '(^|; )' || name || ':')) AS dropped
FROM checked GROUP BY name
UNION ALL
SELECT 'defect', substr(name, 8),
       count(*) FILTER (WHERE tagged),
       count(*) FILTER (WHERE contains(coalesce(reason, ''), 'defect: ' || substr(name, 8)))
FROM tagged GROUP BY name
UNION ALL
SELECT 'content type', content_type, count(*),
       count(*) FILTER (WHERE contains(coalesce(reason, ''), 'content type: ' || content_type))
FROM c WHERE content_type IS NOT NULL GROUP BY content_type
ORDER BY kind, name;
