-- The metric definitions evaluation rows were computed under, each with the variants scored by it (a report takes
-- one). Rows scored before definitions were recorded have none (NULL: the column is missing from their files).
-- Inputs: evals (ablation_eval, every variant: variant, definition, ...).
SELECT definition, list(DISTINCT variant ORDER BY variant) AS variants
FROM evals
GROUP BY definition
ORDER BY definition NULLS FIRST;
