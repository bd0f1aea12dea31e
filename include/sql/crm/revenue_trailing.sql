-- Completed orders' revenue over the trailing twelve months that end with the period (for CLV), as
-- one row: the sum, and beside it the source rows the order rules leave out, counted as the rules
-- count them when they judge one row per order (crm_kpis/sources/extracts.py ORDER_RULES), in the
-- same order, each row under the first rule it breaks:
--   amounts_unreadable   an amount that is not a number (text in a numeric column of a synced
--                        source: `x + 0 = x` fails for it); every copy of such a row
--   duplicates           further copies of an order id (a sync that wrote it twice; of copies that
--                        differ, the largest amount is kept)
--   amounts_excluded     an order whose amount is missing or negative
--   orphans              an order whose customer does not exist
-- Why in SQL: at company scale the window holds ten million orders, which were read one row per
-- order only to be counted and summed; the database answers with one row. The orders are grouped
-- first and the customers joined to the groups (deduplicated: a customer synced twice must not
-- count an order twice): on PostgreSQL a third faster than joining every order row first.
WITH per_order AS (
    SELECT order_id,
           SUM(CASE WHEN total_amount IS NOT NULL AND NOT (total_amount + 0 = total_amount) THEN 1 ELSE 0 END)
               AS unreadable_copies,
           SUM(CASE WHEN total_amount IS NOT NULL AND NOT (total_amount + 0 = total_amount) THEN 0 ELSE 1 END)
               AS copies,
           MAX(CASE WHEN total_amount IS NULL OR total_amount + 0 = total_amount THEN total_amount END) AS amount,
           MAX(CASE WHEN total_amount IS NULL OR total_amount + 0 = total_amount THEN customer_id END) AS customer_id
    FROM orders
    WHERE status = 'completed' AND ordered_at >= :trailing_start AND ordered_at < :end
    GROUP BY order_id
)
SELECT SUM(CASE WHEN p.copies > 0 AND p.amount >= 0 AND c.customer_id IS NOT NULL THEN p.amount END) AS total_amount,
       COALESCE(SUM(p.unreadable_copies), 0) AS amounts_unreadable,
       COALESCE(SUM(CASE WHEN p.copies > 1 THEN p.copies - 1 ELSE 0 END), 0) AS duplicates,
       COALESCE(SUM(CASE WHEN p.copies > 0 AND (p.amount IS NULL OR p.amount < 0) THEN 1 ELSE 0 END), 0)
           AS amounts_excluded,
       COALESCE(SUM(CASE WHEN p.copies > 0 AND p.amount >= 0 AND c.customer_id IS NULL THEN 1 ELSE 0 END), 0) AS orphans
FROM per_order p
LEFT JOIN (SELECT DISTINCT customer_id FROM customers) c ON c.customer_id = p.customer_id
