-- Tickets resolved in the period, with their SLA targets and the number of public agent replies.
SELECT t.ticket_id, t.created_at, t.first_response_at, t.resolved_at, t.category, t.priority,
       t.reopen_count, t.channel AS ticket_channel, a.team AS agent_team,
       p.first_response_minutes AS sla_first_response_minutes,
       p.resolution_minutes AS sla_resolution_minutes,
       (SELECT COUNT(*) FROM ticket_messages m
         WHERE m.ticket_id = t.ticket_id AND m.author = 'agent' AND m.public = TRUE) AS public_agent_messages
FROM tickets t
LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
LEFT JOIN sla_policies p ON p.priority = t.priority
WHERE t.resolved_at >= :start AND t.resolved_at < :end
