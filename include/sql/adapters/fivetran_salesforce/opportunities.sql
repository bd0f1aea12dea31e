-- The reference `opportunities`: Salesforce opportunities. Their proposal and close times come
-- from OpportunityHistory: the first entry into Proposal/Price Quote, the last into a closed stage (a
-- deal reopened after it was won closes when it is decided again; close_date, a date, where the
-- history has no closed stage: at its creation when it was created and closed that same day, so
-- that midnight does not precede its creation).
SELECT o.id AS opportunity_id,
       {{ case('o.type', mappings.kinds) }} AS kind,
       {{ null('id') }} AS lead_id,
       o.account_id AS customer_id,
       o.owner_id AS owner_rep_id,
       o.created_date AS created_at,
       {{ case('o.stage_name', mappings.stages) }} AS stage,
       o.amount,
       h.proposal_at AS proposal_sent_at,
       CASE WHEN o.is_closed = TRUE THEN COALESCE(h.closed_at, CASE WHEN o.close_date < o.created_date
                 AND {{ day('o.close_date') }} = {{ day('o.created_date') }} THEN o.created_date ELSE o.close_date END)
       END AS closed_at,
       CASE WHEN o.is_closed = TRUE AND o.is_won = TRUE THEN 'won' WHEN o.is_closed = TRUE THEN 'lost' END AS outcome
FROM {{ src.opportunity }} o
LEFT JOIN (
    SELECT x.opportunity_id,
           MIN(CASE WHEN x.stage_name = 'Proposal/Price Quote' THEN x.created_date END) AS proposal_at,
           MAX(CASE WHEN x.stage_name IN ('Closed Won', 'Closed Lost') THEN x.created_date END) AS closed_at
    FROM {{ src.opportunity_history }} x
    WHERE x.is_deleted IS NULL OR x.is_deleted = FALSE
    GROUP BY x.opportunity_id
) h ON h.opportunity_id = o.id
WHERE o.is_deleted IS NULL OR o.is_deleted = FALSE
