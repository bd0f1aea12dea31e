SELECT t.agent_id, t.work_date, t.hours_logged, a.hourly_cost, a.team AS agent_team
FROM agent_time t
JOIN agents a ON a.agent_id = t.agent_id
WHERE t.work_date >= :start_date AND t.work_date < :end_date
