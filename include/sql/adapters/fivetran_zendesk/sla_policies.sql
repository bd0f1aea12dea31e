-- The reference `sla_policies`: per priority, the calendar-hours targets (minutes) of the latest
-- version of the SLA policy of lowest id: first_reply_time for the first response and
-- requester_wait_time for the resolution (there is no total-resolution metric in this table).
SELECT m.priority,
       MAX(CASE WHEN m.metric = 'first_reply_time' THEN m.target END) AS first_response_minutes,
       MAX(CASE WHEN m.metric = 'requester_wait_time' THEN m.target END) AS resolution_minutes
FROM {{ src.sla_policy_metric_history }} m
JOIN (SELECT MIN(sla_policy_id) AS sla_policy_id FROM {{ src.sla_policy_metric_history }} f
      WHERE business_hours = FALSE) p ON p.sla_policy_id = m.sla_policy_id
WHERE m.business_hours = FALSE
  AND m.sla_policy_updated_at = (SELECT MAX(v.sla_policy_updated_at) FROM {{ src.sla_policy_metric_history }} v
                                 WHERE v.sla_policy_id = m.sla_policy_id AND v.business_hours = FALSE)
GROUP BY m.priority
HAVING MAX(CASE WHEN m.metric = 'first_reply_time' THEN m.target END) IS NOT NULL
