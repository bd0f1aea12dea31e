-- The reference `sales_activities`: calls and emails (tasks, at their creation) and meetings
-- (events, at their start); other tasks (to-dos) are not sales activities. A who_id of a lead
-- (prefix 00Q) is the lead, a what_id of an opportunity (prefix 006) the opportunity.
SELECT t.id AS activity_id,
       CASE WHEN t.task_subtype = 'Call' OR t.type = 'Call' THEN 'call' ELSE 'email' END AS kind,
       t.owner_id AS rep_id,
       CASE WHEN t.who_id LIKE '00Q%' THEN t.who_id END AS lead_id,
       CASE WHEN t.what_id LIKE '006%' THEN t.what_id END AS opportunity_id,
       t.created_date AS occurred_at
FROM {{ src.task }} t
WHERE (t.is_deleted IS NULL OR t.is_deleted = FALSE)
  AND (t.task_subtype IN ('Call', 'Email', 'ListEmail') OR t.type IN ('Call', 'Email'))
UNION ALL
SELECT e.id AS activity_id, 'meeting' AS kind, e.owner_id AS rep_id,
       CASE WHEN e.who_id LIKE '00Q%' THEN e.who_id END AS lead_id,
       CASE WHEN e.what_id LIKE '006%' THEN e.what_id END AS opportunity_id,
       e.start_date_time AS occurred_at
FROM {{ src.event }} e
WHERE e.is_deleted IS NULL OR e.is_deleted = FALSE
