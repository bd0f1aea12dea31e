-- The reference `opportunities`: HubSpot deals. Proposal and close times come from deal_stage: the
-- first entry into Contract Sent, the last into a closed stage (Closed Won, or probability 0: lost).
SELECT d.deal_id AS opportunity_id,
       {{ case('d.property_dealtype', mappings.kinds) }} AS kind,
       {{ null('id') }} AS lead_id,
       k.company_id AS customer_id,
       d.owner_id AS owner_rep_id,
       d.property_createdate AS created_at,
       {{ case('s.label', mappings.stages) }} AS stage,
       d.property_amount AS amount,
       h.proposal_at AS proposal_sent_at,
       CASE WHEN s.closed_won = TRUE OR s.probability = 0 THEN h.closed_at END AS closed_at,
       CASE WHEN s.closed_won = TRUE THEN 'won' WHEN s.probability = 0 THEN 'lost' END AS outcome
FROM {{ src.deal }} d
LEFT JOIN {{ src.deal_pipeline_stage }} s ON s.stage_id = d.deal_pipeline_stage_id
LEFT JOIN (SELECT deal_id, MIN(company_id) AS company_id FROM {{ src.deal_company }} dc GROUP BY deal_id) k
  ON k.deal_id = d.deal_id
LEFT JOIN (
    SELECT x.deal_id,
           MIN(CASE WHEN y.label = 'Contract Sent' THEN x.date_entered END) AS proposal_at,
           MAX(CASE WHEN y.closed_won = TRUE OR y.probability = 0 THEN x.date_entered END) AS closed_at
    FROM {{ src.deal_stage }} x
    JOIN {{ src.deal_pipeline_stage }} y ON y.stage_id = x.value
    GROUP BY x.deal_id
) h ON h.deal_id = d.deal_id
WHERE d.is_deleted IS NULL OR d.is_deleted = FALSE
