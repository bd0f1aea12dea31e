-- The reference `campaigns`: Salesforce campaigns; the channel from the campaign type (other
-- types are kept as they are, as their own members).
SELECT c.id AS campaign_id,
       c.name,
       CASE c.type WHEN 'Email' THEN 'email' WHEN 'Advertisement' THEN 'paid_search' WHEN 'Banner Ads' THEN 'paid_search'
                   WHEN 'Social Media' THEN 'social' WHEN 'Seminar / Conference' THEN 'events'
                   WHEN 'Referral Program' THEN 'referral' WHEN 'Webinar' THEN 'content' ELSE c.type END AS channel,
       c.start_date AS started_on,
       c.end_date AS ended_on,
       c.actual_cost AS cost
FROM {{ src.campaign }} c
WHERE c.is_deleted IS NULL OR c.is_deleted = FALSE
