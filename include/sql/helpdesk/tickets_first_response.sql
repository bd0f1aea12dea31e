SELECT t.ticket_id, t.created_at, t.first_response_at, t.channel AS ticket_channel, a.team AS agent_team
FROM tickets t
LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
WHERE t.first_response_at >= :start AND t.first_response_at < :end
