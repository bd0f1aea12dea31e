-- The reference `sales_reps`: Salesforce users; the team is the user's role.
SELECT u.id AS rep_id, u.name, r.name AS team
FROM {{ src.user }} u
LEFT JOIN {{ src.user_role }} r ON r.id = u.user_role_id
