-- Every previewed item once (video or clip id, and its kind): what labels may name.
-- Inputs: previews (all shards).
SELECT item, any_value(kind) AS kind FROM previews WHERE status = 'ok' GROUP BY item;
