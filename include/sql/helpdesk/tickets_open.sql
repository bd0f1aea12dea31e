-- Tickets open at the end of the period: created before it, not resolved before it.
-- resolved_at is returned so that a resolution that has not happened yet (a placeholder year) is an
-- excluded, counted row rather than a ticket open for ever (typed_read's future_ rule).
SELECT t.ticket_id, t.resolved_at, t.channel AS ticket_channel, a.team AS agent_team
FROM tickets t
LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
WHERE t.created_at < :end AND (t.resolved_at IS NULL OR t.resolved_at >= :end)
