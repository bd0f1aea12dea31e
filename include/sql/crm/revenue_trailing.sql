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
-- order only to be counted and summed; the database answers with one row.
WITH window_rows AS (
    SELECT o.order_id, o.total_amount, c.customer_id AS known_customer_id,
           CASE WHEN o.total_amount IS NOT NULL AND NOT (o.total_amount + 0 = o.total_amount)
                THEN 1 ELSE 0 END AS unreadable
    FROM orders o
    LEFT JOIN customers c ON c.customer_id = o.customer_id
    WHERE o.status = 'completed' AND o.ordered_at >= :trailing_start AND o.ordered_at < :end
),
per_order AS (
    SELECT order_id,
           SUM(unreadable) AS unreadable_copies,
           SUM(1 - unreadable) AS copies,
           MAX(CASE WHEN unreadable = 0 THEN total_amount END) AS amount,
           MAX(CASE WHEN unreadable = 0 THEN known_customer_id END) AS known_customer_id
    FROM window_rows
    GROUP BY order_id
)
SELECT SUM(CASE WHEN copies > 0 AND amount >= 0 AND known_customer_id IS NOT NULL THEN amount END) AS total_amount,
       COALESCE(SUM(unreadable_copies), 0) AS amounts_unreadable,
       COALESCE(SUM(CASE WHEN copies > 1 THEN copies - 1 ELSE 0 END), 0) AS duplicates,
       COALESCE(SUM(CASE WHEN copies > 0 AND (amount IS NULL OR amount < 0) THEN 1 ELSE 0 END), 0) AS amounts_excluded,
       COALESCE(SUM(CASE WHEN copies > 0 AND amount >= 0 AND known_customer_id IS NULL THEN 1 ELSE 0 END), 0) AS orphans
FROM per_order
