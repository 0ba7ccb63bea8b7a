-- Listed source videos that no stored shard holds yet, in listing order.
-- Inputs: listing(source_uri), shard_lists(source_uri, ...).
SELECT DISTINCT l.source_uri
FROM listing AS l
ANTI JOIN shard_lists AS s USING (source_uri)
ORDER BY l.source_uri;
