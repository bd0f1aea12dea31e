-- Every engagement with its time and owner: from the table of its type (engagement_call, _email,
-- _meeting, _note, _task: hs_timestamp and hubspot_owner_id, where the current connector keeps
-- them), else from engagement itself (an older connector's timestamp and owner_id). Deleted
-- engagements of a type table are left out.
SELECT e.id AS engagement_id, e.type,
       COALESCE(t.at, e.timestamp) AS at,
       COALESCE(t.owner_id, {{ as_id('e.owner_id') }}) AS owner_id
FROM {{ src.engagement }} e
LEFT JOIN (
{%- for kind in ['call', 'email', 'meeting', 'note', 'task'] %}
    SELECT x.engagement_id, x.property_hs_timestamp AS at, {{ as_id('x.property_hubspot_owner_id') }} AS owner_id
    FROM {{ src['engagement_' ~ kind] }} x WHERE x._fivetran_deleted IS NULL OR x._fivetran_deleted = FALSE
    {%- if not loop.last %}
    UNION ALL
    {%- endif %}
{%- endfor %}
) t ON t.engagement_id = e.id
