-- The reference `campaigns`: Salesforce campaigns; the channel from the campaign type (other
-- types are kept as they are, as their own members).
SELECT c.id AS campaign_id,
       c.name,
       {{ case('c.type', mappings.channels) }} AS channel,
       c.start_date AS started_on,
       c.end_date AS ended_on,
       c.actual_cost AS cost
FROM {{ src.campaign }} c
WHERE c.is_deleted IS NULL OR c.is_deleted = FALSE
