-- Opportunities closed in the period, with the calls logged on them before they closed.
SELECT p.opportunity_id, p.created_at, p.closed_at, p.outcome, p.amount, c.segment, r.team AS rep_team,
       COALESCE(k.calls, 0) AS calls_before_close
FROM opportunities p
LEFT JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
LEFT JOIN (
    -- counted for the period's opportunities only, in one join rather than a lookup per row
    SELECT a.opportunity_id, COUNT(*) AS calls
    FROM sales_activities a
    JOIN opportunities q ON q.opportunity_id = a.opportunity_id
    WHERE q.closed_at >= :start AND q.closed_at < :end AND a.kind = 'call' AND a.occurred_at < q.closed_at
    GROUP BY a.opportunity_id
) k ON k.opportunity_id = p.opportunity_id
WHERE p.closed_at >= :start AND p.closed_at < :end
