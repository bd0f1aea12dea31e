-- Subscriptions whose term ends in the period, and whether a renewal of them started before the
-- period's end (a later renewal must not change a re-run of this period).
SELECT s.subscription_id, s.term_ends_at, c.segment,
       CASE WHEN EXISTS (
           SELECT 1 FROM subscriptions r
           WHERE r.renewed_from_subscription_id = s.subscription_id AND r.started_at < :end
       ) THEN 1 ELSE 0 END AS renewed
FROM subscriptions s
LEFT JOIN customers c ON c.customer_id = s.customer_id
WHERE s.term_ends_at >= :start AND s.term_ends_at < :end
