-- Completed orders over the trailing twelve months that end with the period (for CLV), one row per
-- order so that the order rules (duplicates, negative or missing amounts, orphans) apply to them as
-- to every extract of orders; known_customer_id is NULL for an order whose customer does not exist.
-- Only the three columns the rules and the sum need: at company scale this is ten million rows.
SELECT o.order_id, o.total_amount, c.customer_id AS known_customer_id
FROM orders o
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status = 'completed' AND o.ordered_at >= :trailing_start AND o.ordered_at < :end
