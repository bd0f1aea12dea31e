-- Every engagement with its time and owner: from the table of its type (engagement_call, _email,
-- _meeting, _note, _task: hs_timestamp and hubspot_owner_id, where the current connector keeps
-- them), else from engagement itself (an older connector's timestamp and owner_id). Deleted
-- engagements of a type table are left out.
SELECT e.id AS engagement_id, e.type,
       COALESCE(t.at, e.timestamp) AS at,
       COALESCE(t.owner_id, {{ as_id('e.owner_id') }}) AS owner_id
FROM {{ src.engagement }} e
LEFT JOIN (
    SELECT c.engagement_id, c.property_hs_timestamp AS at, {{ as_id('c.property_hubspot_owner_id') }} AS owner_id
    FROM {{ src.engagement_call }} c WHERE c._fivetran_deleted IS NULL OR c._fivetran_deleted = FALSE
    UNION ALL
    SELECT m.engagement_id, m.property_hs_timestamp, {{ as_id('m.property_hubspot_owner_id') }}
    FROM {{ src.engagement_email }} m WHERE m._fivetran_deleted IS NULL OR m._fivetran_deleted = FALSE
    UNION ALL
    SELECT g.engagement_id, g.property_hs_timestamp, {{ as_id('g.property_hubspot_owner_id') }}
    FROM {{ src.engagement_meeting }} g WHERE g._fivetran_deleted IS NULL OR g._fivetran_deleted = FALSE
    UNION ALL
    SELECT n.engagement_id, n.property_hs_timestamp, {{ as_id('n.property_hubspot_owner_id') }}
    FROM {{ src.engagement_note }} n WHERE n._fivetran_deleted IS NULL OR n._fivetran_deleted = FALSE
    UNION ALL
    SELECT k.engagement_id, k.property_hs_timestamp, {{ as_id('k.property_hubspot_owner_id') }}
    FROM {{ src.engagement_task }} k WHERE k._fivetran_deleted IS NULL OR k._fivetran_deleted = FALSE
) t ON t.engagement_id = e.id
