-- The reference `opportunity_stage_history`: deal_stage rows that change the stage.
SELECT s.deal_id AS opportunity_id,
       {{ case('s.label', mappings.stages) }} AS stage,
       s.date_entered AS entered_at
FROM (
    SELECT x.deal_id, y.label, x.date_entered,
           LAG(x.value) OVER (PARTITION BY x.deal_id ORDER BY x.date_entered) AS previous, x.value
    FROM {{ src.deal_stage }} x
    JOIN {{ src.deal_pipeline_stage }} y ON y.stage_id = x.value
) s
WHERE s.previous IS NULL OR s.previous <> s.value
