-- sales.cross_sell_rate, sales.upsell_rate: of the customers with a completed order in the period,
-- the share with an order that brought a product category new to them (and was not their first
-- order), and the share with an order of a higher tier than any earlier order. "Earlier" needs
-- each buyer's whole purchase history, as in the pipeline.
WITH buyer_lines AS (
    SELECT o.customer_id, o.order_id, o.ordered_at, p.category, p.tier
    FROM orders o
    JOIN order_lines l ON l.order_id = o.order_id
    JOIN products p ON p.product_id = l.product_id
    WHERE o.status = 'completed' AND o.ordered_at < :end
      AND o.customer_id IN (
          SELECT customer_id FROM orders WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end
      )
),
per_instant AS (
    -- orders placed at the same instant are one purchase: neither is before the other
    SELECT customer_id, ordered_at, MAX(tier) AS max_tier
    FROM buyer_lines GROUP BY customer_id, ordered_at
),
ranked AS (
    SELECT customer_id, ordered_at, max_tier,
           MAX(max_tier) OVER (PARTITION BY customer_id ORDER BY ordered_at
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_max_tier,
           MIN(ordered_at) OVER (PARTITION BY customer_id) AS first_order_at
    FROM per_instant
),
category_first AS (
    SELECT customer_id, category, MIN(ordered_at) AS first_at FROM buyer_lines GROUP BY customer_id, category
),
new_category_instants AS (
    SELECT DISTINCT b.customer_id, b.ordered_at
    FROM buyer_lines b
    JOIN category_first f ON f.customer_id = b.customer_id AND f.category = b.category AND f.first_at = b.ordered_at
)
SELECT CAST(COUNT(DISTINCT r.customer_id) FILTER (WHERE r.ordered_at > r.first_order_at AND n.customer_id IS NOT NULL)
            AS double precision) / NULLIF(COUNT(DISTINCT r.customer_id), 0) AS cross_sell_rate,
       CAST(COUNT(DISTINCT r.customer_id) FILTER (WHERE r.max_tier > r.earlier_max_tier)
            AS double precision) / NULLIF(COUNT(DISTINCT r.customer_id), 0) AS upsell_rate
FROM ranked r
LEFT JOIN new_category_instants n ON n.customer_id = r.customer_id AND n.ordered_at = r.ordered_at
WHERE r.ordered_at >= :start AND r.ordered_at < :end
