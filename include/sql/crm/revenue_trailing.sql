-- Completed revenue over the trailing twelve months that end with the period (for CLV).
SELECT COUNT(*) AS orders, COALESCE(SUM(total_amount), 0) AS revenue
FROM orders
WHERE status = 'completed' AND ordered_at >= :trailing_start AND ordered_at < :end
