-- Every customer created before the period's end with his churn date: the tenures the sBG model of
-- retention reads (crm_kpis/clv/forecast.py). A churn after the period's end was not known at its
-- end and is read as none, so a re-run of the period later reads the same tenures.
SELECT customer_id, segment, created_at,
       CASE WHEN churned_at < :end THEN churned_at END AS churned_at
FROM customers
WHERE created_at < :end
