-- Orders placed in the period, with the breakdown attributes of their customer, rep and campaign;
-- known_customer_id is NULL for an order whose customer does not exist (an orphan).
SELECT o.order_id, o.customer_id, o.ordered_at, o.status, o.total_amount, o.campaign_id,
       c.segment, r.team AS rep_team, k.channel, c.customer_id AS known_customer_id
FROM orders o
LEFT JOIN customers c ON c.customer_id = o.customer_id
LEFT JOIN sales_reps r ON r.rep_id = o.sales_rep_id
LEFT JOIN campaigns k ON k.campaign_id = o.campaign_id
WHERE o.ordered_at >= :start AND o.ordered_at < :end
