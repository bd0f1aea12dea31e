-- The retention model's (sBG) input as a team would read it: every customer created before the
-- period's end, with his churn date when it came before that end.
SELECT customer_id, segment, created_at, CASE WHEN churned_at < :end THEN churned_at END AS churned_at
FROM customers
WHERE created_at < :end
