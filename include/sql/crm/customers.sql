-- Customers that can be active at the start or end of the period, created in it or churned in it:
-- created before its end and not churned before its start.
SELECT customer_id, created_at, churned_at, segment, acquisition_channel AS channel,
       campaign_id, referred_by_customer_id
FROM customers
WHERE created_at < :end AND (churned_at IS NULL OR churned_at >= :start)
