-- sales.clv: revenue of the trailing twelve months per mean active customer and month, divided by
-- the mean monthly churn rate of those months (a month's active customers: those active at its start;
-- its churn: every customer who churned in it, over them)
WITH months AS (
    SELECT m AS month_start, m + INTERVAL '1 month' AS month_end
    FROM generate_series(CAST(:trailing_start AS timestamp), CAST(:end AS timestamp) - INTERVAL '1 month', INTERVAL '1 month') AS m
),
monthly AS (
    SELECT mo.month_start,
           COUNT(c.customer_id) FILTER (WHERE c.created_at < mo.month_start
                                        AND (c.churned_at IS NULL OR c.churned_at >= mo.month_start)) AS active,
           COUNT(c.customer_id) FILTER (WHERE c.churned_at >= mo.month_start AND c.churned_at < mo.month_end) AS churned
    FROM months mo
    CROSS JOIN customers c
    WHERE c.created_at < :end AND (c.churned_at IS NULL OR c.churned_at >= :trailing_start)
    GROUP BY mo.month_start
),
revenue AS (
    SELECT SUM(total_amount) AS amount
    FROM orders
    WHERE status = 'completed' AND ordered_at >= :trailing_start AND ordered_at < :end
)
SELECT (r.amount / NULLIF(AVG(m.active) * 12, 0)) / NULLIF(AVG(m.churned::float / NULLIF(m.active, 0)), 0) AS clv
FROM monthly m CROSS JOIN revenue r
GROUP BY r.amount
