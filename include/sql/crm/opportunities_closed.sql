-- Opportunities closed in the period, with the calls logged on them before they closed.
SELECT p.opportunity_id, p.created_at, p.closed_at, p.outcome, p.amount, c.segment, r.team AS rep_team,
       (SELECT COUNT(*) FROM sales_activities a
         WHERE a.opportunity_id = p.opportunity_id AND a.kind = 'call' AND a.occurred_at < p.closed_at)
           AS calls_before_close
FROM opportunities p
LEFT JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
WHERE p.closed_at >= :start AND p.closed_at < :end
