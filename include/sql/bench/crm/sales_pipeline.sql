-- sales.win_rate, sales.cycle_days, sales.open_opportunities, sales.pipeline_value, sales.proposals_sent,
-- sales.mrr, sales.renewal_rate, sales.calls, sales.lead_response_hours
SELECT won::float / NULLIF(closed, 0) AS win_rate, cycle_days, open_opportunities, pipeline_value, proposals_sent,
       mrr, renewed::float / NULLIF(term_ends, 0) AS renewal_rate, calls, lead_response_hours
FROM (SELECT COUNT(*) FILTER (WHERE outcome = 'won') AS won, COUNT(*) AS closed,
             AVG(EXTRACT(EPOCH FROM closed_at - created_at) / 86400) FILTER (WHERE outcome = 'won') AS cycle_days
        FROM opportunities WHERE closed_at >= :start AND closed_at < :end) w,
     (SELECT COUNT(*) AS open_opportunities, SUM(amount) AS pipeline_value FROM opportunities
       WHERE created_at < :end AND (closed_at IS NULL OR closed_at >= :end)) o,
     (SELECT COUNT(*) AS proposals_sent FROM opportunities WHERE proposal_sent_at >= :start AND proposal_sent_at < :end) p,
     (SELECT SUM(mrr) AS mrr FROM subscriptions  -- a renewal is its own row: the renewed one ends at its term
       WHERE started_at < :end AND term_ends_at >= :end AND (cancelled_at IS NULL OR cancelled_at >= :end)) m,
     (SELECT COUNT(*) AS term_ends,
             COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM subscriptions r WHERE r.renewed_from_subscription_id = s.subscription_id
                                              AND r.started_at < :end)) AS renewed
        FROM subscriptions s WHERE s.term_ends_at >= :start AND s.term_ends_at < :end) r,
     (SELECT COUNT(*) AS calls FROM sales_activities WHERE kind = 'call' AND occurred_at >= :start AND occurred_at < :end) c,
     (SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM first_contacted_at - created_at) / 3600)
             AS lead_response_hours
        FROM leads WHERE first_contacted_at >= :start AND first_contacted_at < :end) l
