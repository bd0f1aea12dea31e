-- The reference `survey_responses`: Zendesk satisfaction ratings that were answered (good or bad;
-- `offered` and `unoffered` are no answer), as CSAT answers scoring 5 (good) or 1 (bad), dated when
-- the rating was answered (updated_at; created_at where the sync has no updated_at). The customer is
-- the ticket's organization, else the requester's (a rating without either has no customer: the
-- extract counts it as an orphan).
SELECT r.id AS response_id,
       COALESCE(t.organization_id, u.organization_id) AS customer_id,
       {{ as_text("'csat'") }} AS survey,
       CASE WHEN r.score = 'good' THEN 5 ELSE 1 END AS score,
       COALESCE(r.updated_at, r.created_at) AS responded_at,
       r.ticket_id,
       r.comment
FROM {{ src.satisfaction_rating }} r
LEFT JOIN {{ src.ticket }} t ON t.id = r.ticket_id
LEFT JOIN {{ src.user }} u ON u.id = r.requester_id
WHERE r.score IN ('good', 'bad')
