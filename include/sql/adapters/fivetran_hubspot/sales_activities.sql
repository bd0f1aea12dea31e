-- The reference `sales_activities`: HubSpot engagements of type CALL, EMAIL or MEETING, at their
-- timestamp; the lead is the associated contact and the opportunity the associated deal (the one of
-- lowest id when there are several).
SELECT e.engagement_id AS activity_id,
       CASE e.type WHEN 'CALL' THEN 'call' WHEN 'EMAIL' THEN 'email' ELSE 'meeting' END AS kind,
       e.owner_id AS rep_id,
       c.contact_id AS lead_id,
       d.deal_id AS opportunity_id,
       e.at AS occurred_at
FROM (
{{ part('engagements') }}
) e
LEFT JOIN (SELECT engagement_id, MIN(contact_id) AS contact_id FROM {{ src.engagement_contact }} ec
           GROUP BY engagement_id) c ON c.engagement_id = e.engagement_id
LEFT JOIN (SELECT engagement_id, MIN(deal_id) AS deal_id FROM {{ src.engagement_deal }} ed
           GROUP BY engagement_id) d ON d.engagement_id = e.engagement_id
WHERE e.type IN ('CALL', 'EMAIL', 'MEETING')
