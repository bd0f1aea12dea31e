-- The reference `leads`: HubSpot contacts; the first contact is the contact's first engagement, the
-- conversion its customer lifecycle date and associated company.
SELECT p.id AS lead_id,
       p.property_createdate AS created_at,
       p.property_hs_analytics_source AS source_channel,
       {{ null('id') }} AS campaign_id,
       p.property_hubspot_owner_id AS owner_rep_id,
       f.first_at AS first_contacted_at,
       CASE WHEN p.property_hs_lifecyclestage_customer_date IS NOT NULL THEN 'converted'
            WHEN f.first_at IS NOT NULL THEN 'contacted' ELSE 'new' END AS status,
       p.property_hs_lifecyclestage_customer_date AS converted_at,
       CASE WHEN p.property_hs_lifecyclestage_customer_date IS NOT NULL THEN p.property_associatedcompanyid END AS customer_id
FROM {{ src.contact }} p
LEFT JOIN (
    SELECT a.contact_id, MIN(e.at) AS first_at
    FROM {{ src.engagement_contact }} a
    JOIN (
{{ part('engagements') }}
    ) e ON e.engagement_id = a.engagement_id
    GROUP BY a.contact_id
) f ON f.contact_id = p.id
WHERE (p._fivetran_deleted IS NULL OR p._fivetran_deleted = FALSE)
  -- a contact merged into another is listed in that one's hs_merged_object_ids ("a;b;c"); it is not
  -- a lead of its own (Fivetran's package leaves it out the same way)
  AND NOT EXISTS (SELECT 1 FROM {{ src.contact }} w
                  WHERE w.property_hs_merged_object_ids IS NOT NULL AND w.id <> p.id
                    AND {{ concat("';'", 'w.property_hs_merged_object_ids', "';'") }}
                        LIKE {{ concat("'%;'", as_text('p.id'), "';%'") }})
