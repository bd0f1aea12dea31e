SELECT a.activity_id, a.occurred_at, r.team AS rep_team
FROM sales_activities a
LEFT JOIN sales_reps r ON r.rep_id = a.rep_id
WHERE a.kind = 'call' AND a.occurred_at >= :start AND a.occurred_at < :end
