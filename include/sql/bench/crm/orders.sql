-- sales.revenue, sales.orders, sales.aov, sales.growth_rate (monthly), marketing.campaign_purchases,
-- marketing.campaign_revenue; by segment and in total (segment NULL)
WITH o AS (
    SELECT o.total_amount, o.campaign_id, o.ordered_at >= :start AS current, c.segment
    FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id
    WHERE o.status = 'completed' AND o.ordered_at >= CAST(:start AS timestamp) - INTERVAL '1 month'
      AND o.ordered_at < :end
)
SELECT segment,
       SUM(total_amount) FILTER (WHERE current) AS revenue,
       COUNT(*) FILTER (WHERE current) AS orders,
       SUM(total_amount) FILTER (WHERE current) / NULLIF(COUNT(*) FILTER (WHERE current), 0) AS aov,
       (SUM(total_amount) FILTER (WHERE current) - SUM(total_amount) FILTER (WHERE NOT current))
           / NULLIF(SUM(total_amount) FILTER (WHERE NOT current), 0) AS growth_rate,
       COUNT(*) FILTER (WHERE current AND campaign_id IS NOT NULL) AS campaign_purchases,
       SUM(total_amount) FILTER (WHERE current AND campaign_id IS NOT NULL) AS campaign_revenue
FROM o
GROUP BY ROLLUP (segment)
