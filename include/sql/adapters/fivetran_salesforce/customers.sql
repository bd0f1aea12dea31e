-- The reference `customers`: accounts of a Customer type (or none), from their creation. The
-- segment comes from the headcount; Salesforce records no churn date, campaign or referrer here.
SELECT a.id AS customer_id,
       a.created_date AS created_at,
       {{ segment('a.number_of_employees') }} AS segment,
       a.billing_country_code AS country,
       a.account_source AS acquisition_channel,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS referred_by_customer_id,
       {{ null('timestamp') }} AS churned_at
FROM {{ src.account }} a
WHERE (a.is_deleted IS NULL OR a.is_deleted = FALSE) AND (a.type IS NULL OR a.type LIKE 'Customer%')
