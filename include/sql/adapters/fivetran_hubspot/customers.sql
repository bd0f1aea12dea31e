-- The reference `customers`: companies with a customer lifecycle date, from that date; the segment
-- from the headcount. HubSpot records no churn date, campaign or referrer here.
SELECT c.id AS customer_id,
       c.property_hs_lifecyclestage_customer_date AS created_at,
       {{ segment('c.property_numberofemployees') }} AS segment,
       c.property_country AS country,
       c.property_hs_analytics_source AS acquisition_channel,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS referred_by_customer_id,
       {{ null('timestamp') }} AS churned_at
FROM {{ src.company }} c
WHERE (c.is_deleted IS NULL OR c.is_deleted = FALSE) AND c.property_hs_lifecyclestage_customer_date IS NOT NULL
