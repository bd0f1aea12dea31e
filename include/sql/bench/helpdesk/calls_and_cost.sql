-- operations.inbound_calls, operations.calls_per_day, operations.abandoned_calls, operations.abandonment_rate,
-- operations.speed_of_answer_seconds, operations.handle_minutes, operations.callbacks, operations.service_cost,
-- operations.cost_per_ticket
SELECT inbound_calls, answered_inbound::float / (CAST(:end_date AS date) - CAST(:start_date AS date)) AS calls_per_day,
       abandoned_calls, abandoned_calls::float / NULLIF(inbound_calls, 0) AS abandonment_rate, speed_of_answer_seconds,
       handle_minutes, callbacks, service_cost, service_cost / NULLIF(solved, 0) AS cost_per_ticket
FROM (SELECT COUNT(*) FILTER (WHERE direction = 'inbound') AS inbound_calls,
             COUNT(*) FILTER (WHERE direction = 'inbound' AND answered_at IS NOT NULL) AS answered_inbound,
             COUNT(*) FILTER (WHERE direction = 'inbound' AND outcome = 'abandoned') AS abandoned_calls,
             AVG(EXTRACT(EPOCH FROM answered_at - queued_at)) FILTER (WHERE direction = 'inbound') AS speed_of_answer_seconds,
             AVG(EXTRACT(EPOCH FROM ended_at - answered_at) / 60) AS handle_minutes,
             COUNT(*) FILTER (WHERE is_callback) AS callbacks
        FROM calls WHERE queued_at >= :start AND queued_at < :end) c,
     (SELECT SUM(t.hours_logged * a.hourly_cost) AS service_cost FROM agent_time t JOIN agents a ON a.agent_id = t.agent_id
       WHERE t.work_date >= :start_date AND t.work_date < :end_date) s,
     (SELECT COUNT(*) AS solved FROM tickets WHERE resolved_at >= :start AND resolved_at < :end) r
