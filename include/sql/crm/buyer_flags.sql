-- One row per customer with a completed order in the period: their segment, how many of their
-- period order lines could be judged (a known product with a category and a tier) and how many
-- could not, and the two flags that the cross-sell and up-sell rates count:
--   cross_sell  an order of the period, not the customer's first, holds a category the customer
--               had never bought before that order;
--   upsell      an order of the period holds a higher tier than every earlier order.
-- "Before" is strictly earlier in time: two orders placed at the same instant are one purchase.
-- Why in SQL: the flags need each buyer's whole purchase history. Aggregated here, the extract is
-- one row per buyer (about 630k at company scale) instead of 4.9 million lines and history rows,
-- and the work is done where the rows are. The definition in pandas over the full, unaggregated
-- line history is the test oracle (tests/integration/test_buyer_flags.py).
-- Orders without a customer are left out here; the orders extract counts them (orphan_customer).
WITH period_lines AS (
    SELECT o.customer_id, o.order_id, o.ordered_at, p.category, p.tier
    FROM orders o
    JOIN order_lines l ON l.order_id = o.order_id
    LEFT JOIN products p ON p.product_id = l.product_id
    WHERE o.status = 'completed' AND o.ordered_at >= :start AND o.ordered_at < :end
      AND o.customer_id IS NOT NULL
),
valid_lines AS (
    SELECT customer_id, order_id, ordered_at, category, tier,
           MIN(ordered_at) OVER (PARTITION BY customer_id, category) AS category_first_at
    FROM period_lines
    WHERE category IS NOT NULL AND tier IS NOT NULL
),
history AS (
    -- each category the period's buyers bought before the period, with its highest tier; no
    -- customers join here, so that the aggregation can run in parallel
    SELECT o.customer_id, p.category, MAX(p.tier) AS tier
    FROM orders o
    JOIN order_lines l ON l.order_id = o.order_id
    JOIN products p ON p.product_id = l.product_id
    WHERE o.status = 'completed' AND o.ordered_at < :start
      AND p.category IS NOT NULL AND p.tier IS NOT NULL
      AND o.customer_id IN (
          SELECT customer_id FROM orders
          WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end
      )
    GROUP BY o.customer_id, p.category
),
history_buyers AS (
    SELECT customer_id, MAX(tier) AS max_tier FROM history GROUP BY customer_id
),
period_instants AS (
    -- the buyer's period purchases per instant: orders placed at the same instant are bought
    -- together, neither before the other. new_category: a category the buyer had not bought
    -- before the period and buys here for the first time in it.
    SELECT v.customer_id, v.ordered_at, MAX(v.tier) AS max_tier,
           MAX(CASE WHEN h.customer_id IS NULL AND v.ordered_at = v.category_first_at THEN 1 ELSE 0 END)
               AS new_category
    FROM valid_lines v
    LEFT JOIN history h ON h.customer_id = v.customer_id AND h.category = v.category
    GROUP BY v.customer_id, v.ordered_at
),
ranked AS (
    SELECT customer_id, ordered_at, max_tier, new_category,
           MIN(ordered_at) OVER (PARTITION BY customer_id) AS first_at,
           MAX(max_tier) OVER (PARTITION BY customer_id ORDER BY ordered_at
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_max_tier
    FROM period_instants
),
flags AS (
    -- an earlier purchase exists when the buyer has history, or the instant is not the period's
    -- first; the earlier tier is the higher of the history's and the earlier instants'
    SELECT r.customer_id,
           MAX(CASE WHEN r.new_category = 1 AND (hb.customer_id IS NOT NULL OR r.ordered_at > r.first_at)
                    THEN 1 ELSE 0 END) AS cross_sell,
           MAX(CASE WHEN hb.max_tier IS NULL AND r.earlier_max_tier IS NULL THEN 0
                    WHEN r.max_tier > COALESCE(hb.max_tier, r.earlier_max_tier)
                     AND r.max_tier > COALESCE(r.earlier_max_tier, hb.max_tier) THEN 1
                    ELSE 0 END) AS upsell
    FROM ranked r
    LEFT JOIN history_buyers hb ON hb.customer_id = r.customer_id
    GROUP BY r.customer_id
),
buyers AS (
    SELECT customer_id,
           SUM(CASE WHEN category IS NOT NULL AND tier IS NOT NULL THEN 1 ELSE 0 END) AS lines_judged,
           SUM(CASE WHEN category IS NULL OR tier IS NULL THEN 1 ELSE 0 END) AS lines_excluded
    FROM period_lines
    GROUP BY customer_id
)
SELECT b.customer_id, c.segment, b.lines_judged, b.lines_excluded,
       COALESCE(f.cross_sell, 0) AS cross_sell, COALESCE(f.upsell, 0) AS upsell
FROM buyers b
LEFT JOIN flags f ON f.customer_id = b.customer_id
LEFT JOIN customers c ON c.customer_id = b.customer_id
