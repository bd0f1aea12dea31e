-- The reference `orders`: Shopify orders that are not tests and not deleted. Cancelled or voided,
-- an order is `cancelled`; refunded in full (financial_status refunded), `refunded`; else
-- `completed`, for its total price less what its refunds took back (the refunded lines' subtotal
-- and tax, plus the refunds' order adjustments, which Shopify records as negative amounts), as
-- Fivetran's package computes an order's adjusted total.
SELECT o.id AS order_id,
       o.customer_id,
       o.created_at AS ordered_at,
       CASE WHEN o.cancelled_at IS NOT NULL OR o.financial_status = 'voided' THEN 'cancelled'
            WHEN o.financial_status = 'refunded' THEN 'refunded'
            ELSE 'completed' END AS status,
       o.total_price - COALESCE(r.refunded, 0) + COALESCE(a.adjusted, 0) AS total_amount,
       {{ null('id') }} AS campaign_id,
       {{ null('id') }} AS sales_rep_id
FROM {{ src.order }} o
LEFT JOIN (SELECT f.order_id, SUM(COALESCE(l.subtotal, 0) + COALESCE(l.total_tax, 0)) AS refunded
           FROM {{ src.refund }} f
           JOIN {{ src.order_line_refund }} l ON l.refund_id = f.id
           GROUP BY f.order_id) r ON r.order_id = o.id
LEFT JOIN (SELECT f.order_id, SUM(COALESCE(j.amount, 0) + COALESCE(j.tax_amount, 0)) AS adjusted
           FROM {{ src.refund }} f
           JOIN {{ src.order_adjustment }} j ON j.refund_id = f.id
           GROUP BY f.order_id) a ON a.order_id = o.id
WHERE (o.test IS NULL OR o.test = FALSE)
  AND (o._fivetran_deleted IS NULL OR o._fivetran_deleted = FALSE)
