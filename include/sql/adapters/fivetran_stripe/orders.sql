-- The reference `orders`: Stripe charges that succeeded, were captured and are not test-mode
-- charges. The amount is what the charge settled for (its balance transaction, in the account's
-- currency; the charge's own amount where none is synced), less the share refunded; a charge
-- refunded in full is a refunded order.
SELECT c.id AS order_id,
       c.customer_id,
       c.created AS ordered_at,
       CASE WHEN c.refunded = TRUE THEN 'refunded' ELSE 'completed' END AS status,
       CASE WHEN b.id IS NOT NULL THEN b.amount / {{ number('b.currency', mappings.minor_units, 100) }}
            ELSE c.amount / {{ number('c.currency', mappings.minor_units, 100) }} END
         * CASE WHEN c.refunded = TRUE OR c.amount = 0 THEN 1
                ELSE (c.amount - COALESCE(c.amount_refunded, 0)) * 1.0 / c.amount END AS total_amount,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS sales_rep_id
FROM {{ src.charge }} c
LEFT JOIN {{ src.balance_transaction }} b ON b.id = c.balance_transaction_id
WHERE c.status = 'succeeded'
  AND (c.captured IS NULL OR c.captured = TRUE)
  AND (c.livemode IS NULL OR c.livemode = TRUE)
