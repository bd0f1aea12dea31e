-- The reference `agents`: Zendesk users with role agent or admin (deleted ones too: their tickets
-- stay in the history), their team their group (the one of lowest id when they are in several);
-- and a seat per group (id minus the group's id, its team the group), which tickets.sql reads as
-- the assignee of a ticket filed under that group, so that a ticket's team is its own group.
-- Zendesk records no hourly cost.
SELECT u.id AS agent_id,
       u.name,
       g.name AS team,
       NULL AS hourly_cost
FROM {{ src.user }} u
LEFT JOIN (
    SELECT m.user_id, MIN(m.group_id) AS group_id
    FROM {{ src.group_member }} m
    WHERE m._fivetran_deleted IS NULL OR m._fivetran_deleted = FALSE
    GROUP BY m.user_id
) gm ON gm.user_id = u.id
LEFT JOIN {{ src.group }} g ON g.id = gm.group_id
WHERE u.role IN ('agent', 'admin')
UNION ALL
SELECT -g.id AS agent_id,
       g.name,
       g.name AS team,
       NULL AS hourly_cost
FROM {{ src.group }} g
