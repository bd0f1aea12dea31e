-- sales.repeat_purchase_rate, marketing.nps, operations.csat, operations.ces, operations.feedback_volume
SELECT repeaters::float / NULLIF(buyers, 0) AS repeat_purchase_rate, nps, csat, ces, feedback_volume
FROM (SELECT COUNT(*) AS buyers,
             COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM orders p WHERE p.customer_id = b.customer_id
                                              AND p.status = 'completed' AND p.ordered_at < :start)) AS repeaters
        FROM (SELECT DISTINCT customer_id FROM orders
               WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end) b) r,
     (SELECT 100.0 * (COUNT(*) FILTER (WHERE survey = 'nps' AND score >= 9) - COUNT(*) FILTER (WHERE survey = 'nps' AND score <= 6))
                   / NULLIF(COUNT(*) FILTER (WHERE survey = 'nps'), 0) AS nps,
             COUNT(*) FILTER (WHERE survey = 'csat' AND score >= 4)::float / NULLIF(COUNT(*) FILTER (WHERE survey = 'csat'), 0) AS csat,
             AVG(score) FILTER (WHERE survey = 'ces') AS ces, COUNT(*) AS feedback_volume
        FROM survey_responses WHERE responded_at >= :start AND responded_at < :end) s
