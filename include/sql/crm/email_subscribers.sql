-- Subscribers on the list at some point of the period: subscribed before its end, not
-- unsubscribed before its start.
SELECT subscriber_id, subscribed_at, unsubscribed_at
FROM email_subscribers
WHERE subscribed_at < :end AND (unsubscribed_at IS NULL OR unsubscribed_at >= :start)
