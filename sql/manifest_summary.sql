-- One row of totals over one or more manifest tables.
SELECT
    count(*)                                                   AS videos,
    count(*) FILTER (WHERE status = 'ok')                      AS ok,
    count(*) FILTER (WHERE status = 'failed')                  AS failed,
    coalesce(sum(duration_s) FILTER (WHERE status = 'ok'), 0) / 3600.0 AS hours_ok,
    coalesce(sum(size_bytes) FILTER (WHERE status = 'ok'), 0)::BIGINT AS bytes_ok
FROM video_manifest;
