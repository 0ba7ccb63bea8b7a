-- One recipe version's decisions, kept beside the others (tables/lineage_versions/vNNNN): lineage's row per input
-- video without the content measures, for comparing two versions (sql/compare_videos.sql). Inputs: lineage.
SELECT video_id, source_uri, shard, source, status, stage, reason,
       aesthetic, temporal, motion, codec_motion, clarity, clips, captioned, caption_digest,
       width, height, duration_s, quality_version, clarity_version
FROM lineage
ORDER BY shard, position;
