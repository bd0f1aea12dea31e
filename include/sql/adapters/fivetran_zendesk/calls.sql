-- Not recorded: the adapter does not read Zendesk Talk, so the reference `calls` is empty (its KPIs
-- are n/a "not recorded by fivetran_zendesk"). Each column is taken from a synced column of the
-- same kind, so that its type matches in every dialect (a bare NULL is text on PostgreSQL).
SELECT t.id AS call_id, t.status AS direction, t.requester_id AS customer_id, t.id AS ticket_id,
       t.assignee_id AS agent_id, t.created_at AS queued_at, t.created_at AS answered_at,
       t.created_at AS ended_at, t._fivetran_deleted AS is_callback, t.status AS outcome
FROM {{ src.ticket }} t
WHERE 1 = 0
