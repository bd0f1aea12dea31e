-- The lifetime-value models' inputs as a team would read them for its own BG/NBD and Gamma-Gamma fit:
-- per customer with a completed order before the period's end, the first and last purchase (a
-- purchase: the orders of one instant), the repeat purchases and their value, the same up to the
-- holdout's start, and the repeat purchases of each of the six holdout months (the fit's check).
WITH purchases AS (
    SELECT customer_id, ordered_at AS at, SUM(total_amount) AS amount,
           ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY ordered_at) AS n
    FROM orders
    WHERE status = 'completed' AND ordered_at < :end
    GROUP BY customer_id, ordered_at
)
SELECT p.customer_id, c.segment, MIN(p.at) AS first_at, MAX(p.at) AS last_at,
       COUNT(*) FILTER (WHERE p.n > 1) AS repeat_purchases,
       COALESCE(SUM(p.amount) FILTER (WHERE p.n > 1), 0) AS repeat_amount,
       COUNT(*) FILTER (WHERE p.n > 1 AND p.at < :holdout_1) AS calibration_repeats,
       MAX(p.at) FILTER (WHERE p.at < :holdout_1) AS calibration_last_at,
       COUNT(*) FILTER (WHERE p.at >= :holdout_1 AND p.at < :holdout_2) AS holdout_1,
       COUNT(*) FILTER (WHERE p.at >= :holdout_2 AND p.at < :holdout_3) AS holdout_2,
       COUNT(*) FILTER (WHERE p.at >= :holdout_3 AND p.at < :holdout_4) AS holdout_3,
       COUNT(*) FILTER (WHERE p.at >= :holdout_4 AND p.at < :holdout_5) AS holdout_4,
       COUNT(*) FILTER (WHERE p.at >= :holdout_5 AND p.at < :holdout_6) AS holdout_5,
       COUNT(*) FILTER (WHERE p.at >= :holdout_6) AS holdout_6
FROM purchases p
LEFT JOIN customers c ON c.customer_id = p.customer_id
GROUP BY p.customer_id, c.segment
