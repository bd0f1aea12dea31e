-- Tickets resolved in the period, with their SLA targets and the number of public agent replies.
SELECT t.ticket_id, t.created_at, t.first_response_at, t.resolved_at, t.category, t.priority,
       t.reopen_count, t.channel AS ticket_channel, a.team AS agent_team,
       p.first_response_minutes AS sla_first_response_minutes,
       p.resolution_minutes AS sla_resolution_minutes,
       COALESCE(m.public_agent_messages, 0) AS public_agent_messages
FROM tickets t
LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
LEFT JOIN sla_policies p ON p.priority = t.priority
LEFT JOIN (
    -- counted for the period's resolved tickets only, in one join rather than a count per row (a
    -- synced helpdesk read through an adapter has no index on the messages' ticket id)
    SELECT g.ticket_id, COUNT(*) AS public_agent_messages
    FROM ticket_messages g
    WHERE g.author = 'agent' AND g.public = TRUE
      AND g.ticket_id IN (SELECT r.ticket_id FROM tickets r WHERE r.resolved_at >= :start AND r.resolved_at < :end)
    GROUP BY g.ticket_id
) m ON m.ticket_id = t.ticket_id
WHERE t.resolved_at >= :start AND t.resolved_at < :end
