-- operations.tickets_created, operations.tickets_solved, operations.backlog, operations.first_response_hours,
-- operations.resolution_hours (mean and median), operations.complaint_resolution_hours, operations.reopen_rate,
-- operations.sla_compliance_rate, operations.fcr_rate, operations.complaint_resolution_rate
SELECT c.tickets_created, r.tickets_solved, b.backlog, f.first_response_hours, r.resolution_hours,
       r.resolution_hours_median, r.complaint_resolution_hours, r.reopened::float / NULLIF(r.tickets_solved, 0) AS reopen_rate,
       r.sla_met::float / NULLIF(r.tickets_solved, 0) AS sla_compliance_rate, r.fcr::float / NULLIF(r.tickets_solved, 0) AS fcr_rate,
       c.complaints_resolved::float / NULLIF(c.complaints, 0) AS complaint_resolution_rate
FROM (SELECT COUNT(*) AS tickets_created, COUNT(*) FILTER (WHERE category = 'complaint') AS complaints,
             COUNT(*) FILTER (WHERE category = 'complaint' AND resolved_at < :end) AS complaints_resolved
        FROM tickets WHERE created_at >= :start AND created_at < :end) c,
     (SELECT COUNT(*) AS backlog FROM tickets WHERE created_at < :end AND (resolved_at IS NULL OR resolved_at >= :end)) b,
     (SELECT PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM first_response_at - created_at) / 3600)
             AS first_response_hours
        FROM tickets WHERE first_response_at >= :start AND first_response_at < :end) f,
     (SELECT COUNT(*) AS tickets_solved,
             AVG(EXTRACT(EPOCH FROM t.resolved_at - t.created_at) / 3600) AS resolution_hours,
             PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM t.resolved_at - t.created_at) / 3600)
                 AS resolution_hours_median,
             AVG(EXTRACT(EPOCH FROM t.resolved_at - t.created_at) / 3600) FILTER (WHERE t.category = 'complaint')
                 AS complaint_resolution_hours,
             COUNT(*) FILTER (WHERE t.reopen_count > 0) AS reopened,
             COUNT(*) FILTER (WHERE t.first_response_at <= t.created_at + p.first_response_minutes * INTERVAL '1 minute'
                                AND t.resolved_at <= t.created_at + p.resolution_minutes * INTERVAL '1 minute') AS sla_met,
             COUNT(*) FILTER (WHERE t.reopen_count = 0 AND (SELECT COUNT(*) FROM ticket_messages m
                                WHERE m.ticket_id = t.ticket_id AND m.author = 'agent' AND m.public) = 1) AS fcr
        FROM tickets t LEFT JOIN sla_policies p ON p.priority = t.priority
       WHERE t.resolved_at >= :start AND t.resolved_at < :end) r
