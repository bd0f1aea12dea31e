-- Not recorded: Zendesk keeps no agent hours, so the reference `agent_time` is empty (its KPIs are
-- n/a "not recorded by fivetran_zendesk"). Columns typed from synced columns of the same kind.
SELECT u.id AS agent_id, t.created_at AS work_date, t.id AS hours_logged
FROM {{ src.user }} u, {{ src.ticket }} t
WHERE 1 = 0
