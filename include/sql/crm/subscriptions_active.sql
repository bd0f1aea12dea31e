-- Subscriptions running at the end of the period: started before it, term not over and not
-- cancelled before it (a renewal is its own subscription row, so a renewed one is not counted twice).
-- cancelled_at is returned so that a cancellation that has not happened yet is an excluded, counted row.
SELECT s.subscription_id, s.cancelled_at, s.mrr, c.segment
FROM subscriptions s
LEFT JOIN customers c ON c.customer_id = s.customer_id
WHERE s.started_at < :end AND s.term_ends_at >= :end
  AND (s.cancelled_at IS NULL OR s.cancelled_at >= :end)
