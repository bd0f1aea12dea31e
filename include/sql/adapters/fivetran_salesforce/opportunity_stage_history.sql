-- The reference `opportunity_stage_history`: the OpportunityHistory rows that change the stage
-- (a change of amount or close date alone is a row there too, and is left out).
SELECT s.opportunity_id,
       {{ case('s.stage_name', mappings.stages) }} AS stage,
       s.created_date AS entered_at
FROM (
    SELECT x.opportunity_id, x.stage_name, x.created_date,
           LAG(x.stage_name) OVER (PARTITION BY x.opportunity_id ORDER BY x.created_date) AS previous
    FROM {{ src.opportunity_history }} x
    WHERE x.is_deleted IS NULL OR x.is_deleted = FALSE
) s
WHERE s.previous IS NULL OR s.previous <> s.stage_name
