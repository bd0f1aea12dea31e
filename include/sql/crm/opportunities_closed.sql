-- Opportunities closed in the period.
SELECT p.opportunity_id, p.created_at, p.closed_at, p.outcome, p.amount, c.segment, r.team AS rep_team
FROM opportunities p
LEFT JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
WHERE p.closed_at >= :start AND p.closed_at < :end
