-- Marketing messages sent in the period.
SELECT message_id, sent_at, delivered, opened_at, clicked_at
FROM email_messages
WHERE kind = 'marketing' AND sent_at >= :start AND sent_at < :end
