SELECT p.opportunity_id, p.proposal_sent_at, c.segment, r.team AS rep_team
FROM opportunities p
LEFT JOIN customers c ON c.customer_id = p.customer_id
LEFT JOIN sales_reps r ON r.rep_id = p.owner_rep_id
WHERE p.proposal_sent_at >= :start AND p.proposal_sent_at < :end
