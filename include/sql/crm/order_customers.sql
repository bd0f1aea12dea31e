-- Customers with a completed order in the period, and whether they had one before it.
SELECT o.customer_id, c.segment,
       CASE WHEN EXISTS (
           SELECT 1 FROM orders p
           WHERE p.customer_id = o.customer_id AND p.status = 'completed' AND p.ordered_at < :start
       ) THEN 1 ELSE 0 END AS had_prior_order
FROM (
    SELECT DISTINCT customer_id FROM orders
    WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end
) o
LEFT JOIN customers c ON c.customer_id = o.customer_id
