-- For customers with a completed order in the period: every completed order line they had
-- before the period's end (category and tier), to tell what was new to them.
SELECT o.customer_id, o.order_id, o.ordered_at, p.category, p.tier, c.segment
FROM orders o
JOIN order_lines l ON l.order_id = o.order_id
JOIN products p ON p.product_id = l.product_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status = 'completed' AND o.ordered_at < :end
  AND o.customer_id IN (
      SELECT customer_id FROM orders WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end
  )
