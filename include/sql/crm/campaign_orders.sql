-- Completed orders of the period attributed to a campaign, with the campaign's channel: all that
-- the campaign KPIs read. A narrower twin of orders.sql (about 4% of a month's orders in the demo
-- data at company scale) with the same row checks. The KPIs still apply the definition themselves
-- (completed, with a campaign); this filter only spares reading rows they would drop.
-- known_customer_id is NULL for an order whose customer does not exist (an orphan).
SELECT o.order_id, o.customer_id, o.ordered_at, o.status, o.total_amount, o.campaign_id,
       k.channel, c.customer_id AS known_customer_id
FROM orders o
LEFT JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN campaigns k ON k.campaign_id = o.campaign_id
WHERE o.ordered_at >= :start AND o.ordered_at < :end
  AND o.status = 'completed' AND o.campaign_id IS NOT NULL
