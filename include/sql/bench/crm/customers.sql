-- sales.new_customers, sales.active_customers, sales.retained_customers, sales.retention_rate,
-- sales.churn_rate, marketing.campaign_new_customers, marketing.referrals, marketing.referral_rate
SELECT segment, new_customers, active_customers, retained_customers,
       (active_customers - new_customers)::float / NULLIF(active_at_start, 0) AS retention_rate,
       churned::float / NULLIF(active_at_start, 0) AS churn_rate,
       campaign_new_customers, referrals, referrers::float / NULLIF(active_at_start, 0) AS referral_rate
FROM (
    SELECT segment,
           COUNT(*) FILTER (WHERE created_at >= :start) AS new_customers,
           COUNT(*) FILTER (WHERE churned_at IS NULL OR churned_at >= :end) AS active_customers,
           COUNT(*) FILTER (WHERE created_at < :start AND (churned_at IS NULL OR churned_at >= :end)) AS retained_customers,
           COUNT(*) FILTER (WHERE created_at < :start) AS active_at_start,
           COUNT(*) FILTER (WHERE churned_at >= :start AND churned_at < :end) AS churned,
           COUNT(*) FILTER (WHERE created_at >= :start AND campaign_id IS NOT NULL) AS campaign_new_customers,
           COUNT(*) FILTER (WHERE created_at >= :start AND referred_by_customer_id IS NOT NULL) AS referrals,
           COUNT(DISTINCT referred_by_customer_id) FILTER (WHERE created_at >= :start) AS referrers
    FROM customers
    WHERE created_at < :end AND (churned_at IS NULL OR churned_at >= :start)
    GROUP BY ROLLUP (segment)
) s
