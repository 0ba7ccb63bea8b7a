-- Agreement between every two reviewers on the items both judged good or bad for the same score: the share of
-- items they agree on, and Cohen's kappa (agreement beyond what their own good rates would give by chance).
-- Inputs: labels (the labels asset's table).
WITH judged AS (SELECT reviewer, item, score, label = 'good' AS good FROM labels WHERE label IN ('good', 'bad')),
pairs AS (
    SELECT a.score, a.reviewer AS reviewer_a, b.reviewer AS reviewer_b, a.good AS a_good, b.good AS b_good
    FROM judged AS a JOIN judged AS b ON a.item = b.item AND a.score = b.score AND a.reviewer < b.reviewer
),
rates AS (
    SELECT score, reviewer_a, reviewer_b, count(*) AS items, avg((a_good = b_good)::INT) AS agreement,
           avg(a_good::INT) AS pa, avg(b_good::INT) AS pb
    FROM pairs GROUP BY ALL
)
SELECT score, reviewer_a, reviewer_b, items, round(agreement, 3) AS agreement,
       round(CASE WHEN 1 - (pa * pb + (1 - pa) * (1 - pb)) > 0
                  THEN (agreement - (pa * pb + (1 - pa) * (1 - pb))) / (1 - (pa * pb + (1 - pa) * (1 - pb))) END, 3)
           AS kappa
FROM rates ORDER BY score, reviewer_a, reviewer_b;
