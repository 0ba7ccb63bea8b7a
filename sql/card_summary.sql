-- The dataset card's numbers, per source and overall ('all'): the pool (every decodable video), what was
-- kept, the curated clips and hours, the HD share, and the mean of every score in the pool and the kept set.
-- Inputs: lineage (one row per input video), dataset (exports/openvid.parquet: one row per curated clip).
WITH videos AS (
    SELECT coalesce(source, 'default') AS source, status, duration_s, aesthetic, motion, temporal, clarity,
           in_pool(status, stage) AS in_pool
    FROM lineage
),
per_video AS (
    SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END AS source,
        count(*)                                                       AS input_videos,
        count(*) FILTER (WHERE in_pool)                                AS pool_videos,
        round(coalesce(sum(duration_s) FILTER (WHERE in_pool), 0) / 3600, 6)   AS pool_hours,
        count(*) FILTER (WHERE status = 'kept')                        AS kept_videos,
        count(*) FILTER (WHERE status = 'failed')                      AS failed_videos,
        avg(aesthetic) FILTER (WHERE in_pool)                          AS pool_mean_aesthetic,
        avg(aesthetic) FILTER (WHERE status = 'kept')                  AS kept_mean_aesthetic,
        avg(motion) FILTER (WHERE in_pool)                             AS pool_mean_motion,
        avg(motion) FILTER (WHERE status = 'kept')                     AS kept_mean_motion,
        avg(temporal) FILTER (WHERE in_pool)                           AS pool_mean_temporal,
        avg(temporal) FILTER (WHERE status = 'kept')                   AS kept_mean_temporal,
        avg(clarity) FILTER (WHERE in_pool)                            AS pool_mean_clarity,
        avg(clarity) FILTER (WHERE status = 'kept')                    AS kept_mean_clarity
    FROM videos
    GROUP BY GROUPING SETS ((source), ())
),
per_clip AS (
    SELECT CASE WHEN GROUPING(source) = 1 THEN 'all' ELSE source END AS source,
        count(*)                                                              AS clips,
        round(coalesce(sum(seconds), 0) / 3600, 6)                            AS curated_hours,
        count(*) FILTER (WHERE width >= 1920 AND height >= 1080 AND width > height)            AS hd_clips,
        round(coalesce(sum(seconds) FILTER (WHERE width >= 1920 AND height >= 1080 AND width > height), 0)
              / 3600, 6)                                                      AS hd_hours,
        avg(len(string_split(trim(caption), ' '))) FILTER (WHERE trim(caption) <> '') AS mean_caption_words
    FROM dataset
    GROUP BY GROUPING SETS ((source), ())
)
SELECT v.*, coalesce(c.clips, 0) AS clips, coalesce(c.curated_hours, 0) AS curated_hours,
       coalesce(c.hd_clips, 0) AS hd_clips, coalesce(c.hd_hours, 0) AS hd_hours,
       CASE WHEN coalesce(c.clips, 0) > 0 THEN round(c.hd_clips / c.clips, 4) ELSE 0 END AS hd_share,
       round(c.mean_caption_words, 1) AS mean_caption_words
FROM per_video AS v
LEFT JOIN per_clip AS c USING (source)
ORDER BY v.source = 'all', v.source;
