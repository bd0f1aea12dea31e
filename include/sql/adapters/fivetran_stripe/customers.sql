-- The reference `customers`: live-mode Stripe customers not deleted (as Fivetran's package reads
-- them); a customer churns when every subscription he had has ended, at the last end (one who never
-- subscribed never churns). Stripe records no segment, channel, campaign or referrer.
SELECT c.id AS customer_id,
       c.created AS created_at,
       {{ null('text') }} AS segment,
       c.address_country AS country,
       {{ null('text') }} AS acquisition_channel,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS referred_by_customer_id,
       e.churned_at
FROM {{ src.customer }} c
LEFT JOIN (SELECT s.customer_id, MAX(s.ended_at) AS churned_at
           FROM ({{ part('subscriptions') }}) s
           WHERE s.livemode IS NULL OR s.livemode = TRUE
           GROUP BY s.customer_id
           HAVING COUNT(*) = COUNT(s.ended_at)) e ON e.customer_id = c.id
WHERE (c.is_deleted IS NULL OR c.is_deleted = FALSE)
  AND (c.livemode IS NULL OR c.livemode = TRUE)
