-- The reference `subscriptions`: live-mode Stripe subscriptions, running from their start_date until
-- they ended (a subscription renews in place: its term is the current period, or its end). The MRR
-- is the sum over its items of the plan's amount × quantity per month; the product the first item's.
SELECT s.id AS subscription_id,
       s.customer_id,
       i.product_id,
       s.start_date AS started_at,
       COALESCE(s.ended_at, s.current_period_end) AS term_ends_at,
       s.ended_at AS cancelled_at,
       {{ null('id') }} AS renewed_from_subscription_id,
       i.mrr
FROM ({{ part('subscriptions') }}) s
LEFT JOIN (SELECT si.subscription_id,
                  MIN(p.product_id) AS product_id,
                  SUM(p.amount * COALESCE(si.quantity, 1)
                      / ({{ number('p.currency', mappings.minor_units, 100) }}
                         * {{ number('p.interval', mappings.interval_months, 1) }} * COALESCE(p.interval_count, 1))) AS mrr
           FROM {{ src.subscription_item }} si
           JOIN {{ src.plan }} p ON p.id = si.plan_id
           GROUP BY si.subscription_id) i ON i.subscription_id = s.id
WHERE s.livemode IS NULL OR s.livemode = TRUE
