-- The reference `leads`: Salesforce leads; the first contact is the lead's first task or event,
-- the conversion its converted_date (a date: midnight, or the lead's creation when it was
-- converted the day it came in, so that it does not precede it) and converted account.
SELECT l.id AS lead_id,
       l.created_date AS created_at,
       l.lead_source AS source_channel,
       {{ null('id') }} AS campaign_id,
       l.owner_id AS owner_rep_id,
       f.first_at AS first_contacted_at,
       CASE WHEN l.is_converted = TRUE THEN 'converted'
            WHEN l.status = 'Open - Not Contacted' THEN 'new'
            WHEN l.status = 'Working - Contacted' THEN 'contacted'
            WHEN l.status = 'Closed - Not Converted' THEN 'disqualified'
            ELSE LOWER(l.status) END AS status,
       CASE WHEN l.is_converted = TRUE AND l.converted_date < l.created_date THEN l.created_date
            WHEN l.is_converted = TRUE THEN l.converted_date END AS converted_at,
       CASE WHEN l.is_converted = TRUE THEN l.converted_account_id END AS customer_id
FROM {{ src.lead }} l
LEFT JOIN (
    SELECT c.who_id, MIN(c.at) AS first_at
    FROM (
        SELECT t.who_id, t.created_date AS at FROM {{ src.task }} t
        WHERE t.is_deleted IS NULL OR t.is_deleted = FALSE
        UNION ALL
        SELECT e.who_id, e.start_date_time AS at FROM {{ src.event }} e
        WHERE e.is_deleted IS NULL OR e.is_deleted = FALSE
    ) c
    GROUP BY c.who_id
) f ON f.who_id = l.id
WHERE l.is_deleted IS NULL OR l.is_deleted = FALSE
