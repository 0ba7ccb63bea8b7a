-- Labels per score: how many items, and how many judged good, bad or skipped (each reviewer's latest label).
-- Inputs: labels (the labels asset's table).
SELECT score, count(DISTINCT item) AS items, count(*) FILTER (WHERE label = 'good') AS good,
       count(*) FILTER (WHERE label = 'bad') AS bad, count(*) FILTER (WHERE label = 'skip') AS skipped,
       count(DISTINCT reviewer) AS reviewers
FROM labels GROUP BY score ORDER BY score;
