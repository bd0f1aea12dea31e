-- The reference `sales_reps`: HubSpot owners (their teams are not read: rep_team is not a breakdown here).
SELECT o.owner_id AS rep_id, o.first_name AS name, {{ null('text') }} AS team
FROM {{ src.owner }} o
