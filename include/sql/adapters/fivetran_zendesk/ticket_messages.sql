-- The reference `ticket_messages`: Zendesk's ticket comments; an agent's or admin's is the agent's.
SELECT c.id AS message_id,
       c.ticket_id,
       CASE WHEN u.role IN ('agent', 'admin') THEN 'agent' ELSE 'customer' END AS author,
       CASE WHEN u.role IN ('agent', 'admin') THEN c.user_id END AS agent_id,
       c.created AS created_at,
       c.public
FROM {{ src.ticket_comment }} c
LEFT JOIN {{ src.user }} u ON u.id = c.user_id
WHERE c._fivetran_deleted IS NULL OR c._fivetran_deleted = FALSE
