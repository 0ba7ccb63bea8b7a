-- The cut lines of each source and score in two versions, side by side, and whether they moved.
-- Inputs: ta, tb (the score and clarity thresholds each version was judged by).
SELECT coalesce(b.source, a.source) AS source, coalesce(b.score, a.score) AS score,
       a.description AS rule_a, a.lower AS lower_a, a.upper AS upper_a,
       b.description AS rule_b, b.lower AS lower_b, b.upper AS upper_b,
       (a.description, a.lower, a.upper) IS DISTINCT FROM (b.description, b.lower, b.upper) AS changed
FROM ta AS a FULL OUTER JOIN tb AS b USING (source, score)
ORDER BY source, score;
