-- The customers a connector's rows refer to (its own ids), matched to the stack's customers through
-- the synced column the stack names: how many it refers to, and how many of those have a match
-- among the customers the stack reads. Jinja places the SELECTs and names; no value is inlined.
SELECT COUNT(*) AS referred,
       COUNT(c.customer_id) AS matched
FROM (SELECT DISTINCT r.customer_id FROM ({{ referring }}) r WHERE r.customer_id IS NOT NULL) own
LEFT JOIN {{ match_table }} m ON {{ own_key }} = own.customer_id
LEFT JOIN ({{ customers }}) c ON {{ customer_key }} = {{ matched_id }}
