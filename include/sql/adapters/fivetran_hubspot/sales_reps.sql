-- The reference `sales_reps`: HubSpot owners, each in his primary team (owner_team.is_team_primary;
-- an owner with no primary team: his team of lowest id). Deleted memberships and teams left out.
SELECT o.owner_id AS rep_id, o.first_name AS name, t.name AS team
FROM {{ src.owner }} o
LEFT JOIN (SELECT ot.owner_id,
                  COALESCE(MIN(CASE WHEN ot.is_team_primary = TRUE THEN ot.team_id END), MIN(ot.team_id)) AS team_id
           FROM {{ src.owner_team }} ot
           WHERE ot._fivetran_deleted IS NULL OR ot._fivetran_deleted = FALSE
           GROUP BY ot.owner_id) p ON p.owner_id = o.owner_id
LEFT JOIN {{ src.team }} t ON t.id = p.team_id AND (t._fivetran_deleted IS NULL OR t._fivetran_deleted = FALSE)
