-- Survey responses in the period, with the respondent's acquisition channel and segment.
SELECT s.response_id, s.customer_id, s.survey, s.score, s.responded_at, s.ticket_id,
       c.acquisition_channel AS channel, c.segment, c.customer_id AS known_customer_id
FROM survey_responses s
LEFT JOIN customers c ON c.customer_id = s.customer_id
WHERE s.responded_at >= :start AND s.responded_at < :end
