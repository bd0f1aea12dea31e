-- Stage intervals that ended in the period: when an opportunity entered a stage and when it
-- entered the next one. Only opportunities with a stage change in the period are read.
SELECT x.opportunity_id, x.stage, x.entered_at, x.exited_at, r.team AS rep_team
FROM (
    SELECT h.opportunity_id, h.stage, h.entered_at,
           LEAD(h.entered_at) OVER (PARTITION BY h.opportunity_id ORDER BY h.entered_at) AS exited_at
    FROM opportunity_stage_history h
    WHERE h.entered_at < :end
      AND h.opportunity_id IN (
          SELECT opportunity_id FROM opportunity_stage_history WHERE entered_at >= :start AND entered_at < :end
      )
) x
JOIN opportunities p ON p.opportunity_id = x.opportunity_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
WHERE x.exited_at >= :start AND x.exited_at < :end
