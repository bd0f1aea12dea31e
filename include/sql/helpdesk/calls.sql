SELECT c.call_id, c.direction, c.queued_at, c.answered_at, c.ended_at, c.is_callback, c.outcome,
       a.team AS agent_team
FROM calls c
LEFT JOIN agents a ON a.agent_id = c.agent_id
WHERE c.queued_at >= :start AND c.queued_at < :end
