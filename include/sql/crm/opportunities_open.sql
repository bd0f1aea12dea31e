-- Opportunities open at the end of the period: created before it, not closed before it.
SELECT p.opportunity_id, p.created_at, p.amount, c.segment, r.team AS rep_team
FROM opportunities p
LEFT JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
WHERE p.created_at < :end AND (p.closed_at IS NULL OR p.closed_at >= :end)
