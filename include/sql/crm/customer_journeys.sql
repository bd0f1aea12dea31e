-- Customers created in the period from a lead, with their earliest lead's creation time.
SELECT c.customer_id, c.created_at, c.segment, MIN(l.created_at) AS lead_created_at
FROM customers c
JOIN leads l ON l.customer_id = c.customer_id
WHERE c.created_at >= :start AND c.created_at < :end
GROUP BY c.customer_id, c.created_at, c.segment
