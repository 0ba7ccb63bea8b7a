-- Manifest videos missing from lineage, and lineage rows that are not exactly one per manifest video.
SELECT
    (SELECT count(*) FROM manifest AS m ANTI JOIN lineage AS l USING (source_uri))              AS missing,
    (SELECT count(*) FROM (SELECT source_uri FROM lineage GROUP BY source_uri HAVING count(*) > 1)) AS duplicated,
    (SELECT count(*) FROM lineage AS l ANTI JOIN manifest AS m USING (source_uri))              AS unknown,
    (SELECT count(*) FROM manifest)                                                             AS manifest_rows,
    (SELECT count(*) FROM lineage)                                                              AS lineage_rows;
