-- The ablation in the layout of the paper's Table 9: one row per variant (in the order given), the filters it
-- applied, its training data, and the mean of each metric over its scored samples.
-- Inputs: variants (variant, filters, aesthetic, temporal, motion, clarity, position), runs (ablation_runs: variant,
-- videos, clips, steps, checkpoint), evals (ablation_eval, every variant: variant, definition, status, the metric
-- columns; one metric definition in all).
WITH scored AS (
    SELECT variant, any_value(definition) AS definition, count(*) AS samples,
           count(*) FILTER (WHERE status = 'ok') AS scored,
           avg(COLUMNS(* EXCLUDE (variant, definition, video, prompt, status, error, run, checkpoint)))
               FILTER (WHERE status = 'ok')
    FROM evals
    GROUP BY variant
)
SELECT v.variant,
       CASE WHEN v.aesthetic THEN 'yes' ELSE '-' END AS aesthetic,
       CASE WHEN v.temporal THEN 'yes' ELSE '-' END AS temporal,
       CASE WHEN v.motion THEN 'yes' ELSE '-' END AS motion,
       CASE WHEN v.clarity THEN 'yes' ELSE '-' END AS clarity,
       r.videos, r.clips, r.steps, r.checkpoint,
       s.* EXCLUDE (variant)
FROM variants AS v
LEFT JOIN runs AS r USING (variant)
LEFT JOIN scored AS s USING (variant)
ORDER BY v.position;
