-- Customers that can be active during the trailing twelve months ending with the period (for CLV).
SELECT customer_id, created_at, churned_at, segment
FROM customers
WHERE created_at < :end AND (churned_at IS NULL OR churned_at >= :trailing_start)
