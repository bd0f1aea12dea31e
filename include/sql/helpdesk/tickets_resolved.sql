-- Tickets resolved in the period, with their SLA targets and the number of public agent replies.
-- The period's tickets are selected once (`resolved`, a handful of rows) and the replies counted for
-- them only: `tickets` is read once, so that a helpdesk read through an adapter, where `tickets` is
-- derived from the synced history, derives it once and can push the period into it (read twice, it
-- would be derived in full and kept aside by PostgreSQL). One join rather than a count per row: a
-- synced helpdesk has no index on the messages' ticket id.
WITH resolved AS (
    SELECT t.ticket_id, t.created_at, t.first_response_at, t.resolved_at, t.category, t.priority,
           t.reopen_count, t.channel AS ticket_channel, a.team AS agent_team,
           p.first_response_minutes AS sla_first_response_minutes,
           p.resolution_minutes AS sla_resolution_minutes
    FROM tickets t
    LEFT JOIN agents a ON a.agent_id = t.assignee_agent_id
    LEFT JOIN sla_policies p ON p.priority = t.priority
    WHERE t.resolved_at >= :start AND t.resolved_at < :end
)
SELECT r.ticket_id, r.created_at, r.first_response_at, r.resolved_at, r.category, r.priority,
       r.reopen_count, r.ticket_channel, r.agent_team, r.sla_first_response_minutes, r.sla_resolution_minutes,
       COALESCE(m.public_agent_messages, 0) AS public_agent_messages
FROM resolved r
LEFT JOIN (
    SELECT g.ticket_id, COUNT(*) AS public_agent_messages
    FROM ticket_messages g
    WHERE g.author = 'agent' AND g.public = TRUE AND g.ticket_id IN (SELECT ticket_id FROM resolved)
    GROUP BY g.ticket_id
) m ON m.ticket_id = r.ticket_id
