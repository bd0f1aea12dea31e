-- The reference `customers`: Shopify customers not deleted, from their account's creation. A shop
-- records no segment, channel, campaign, referrer or churn.
SELECT c.id AS customer_id,
       c.created_at,
       {{ null('text') }} AS segment,
       {{ null('text') }} AS country,
       {{ null('text') }} AS acquisition_channel,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS referred_by_customer_id,
       {{ null('timestamp') }} AS churned_at
FROM {{ src.customer }} c
WHERE c._fivetran_deleted IS NULL OR c._fivetran_deleted = FALSE
