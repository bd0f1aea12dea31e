SELECT t.ticket_id, t.created_at, t.resolved_at, t.category, t.channel AS ticket_channel, a.team AS agent_team
FROM tickets t
LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
WHERE t.created_at >= :start AND t.created_at < :end
