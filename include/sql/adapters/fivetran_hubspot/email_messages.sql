-- The reference `email_messages`: HubSpot's email events (email_event), one message per SENT event:
-- delivered when a DELIVERED event names it (sent_by_id), opened and clicked at its first OPEN and
-- CLICK that HubSpot did not filter out (filtered_event: bots, security scanners); the kind from its
-- email campaign's type (HubSpot's transactional sends are transactional, every other email marketing).
SELECT s.id AS message_id,
       s.email_campaign_id AS campaign_id,
       s.recipient AS subscriber_id,
       CASE WHEN c.type IN ('SMTP_TOKEN', 'SINGLE_SEND_API', 'TICKET_EMAIL') THEN 'transactional'
            ELSE 'marketing' END AS kind,
       s.created AS sent_at,
       CASE WHEN e.delivered_at IS NULL THEN FALSE ELSE TRUE END AS delivered,
       e.opened_at,
       e.clicked_at
FROM {{ src.email_event }} s
LEFT JOIN {{ src.email_campaign }} c ON c.id = s.email_campaign_id
LEFT JOIN (SELECT r.sent_by_id,
                  MIN(CASE WHEN r.type = 'DELIVERED' THEN r.created END) AS delivered_at,
                  MIN(CASE WHEN r.type = 'OPEN' AND (r.filtered_event IS NULL OR r.filtered_event = FALSE)
                           THEN r.created END) AS opened_at,
                  MIN(CASE WHEN r.type = 'CLICK' AND (r.filtered_event IS NULL OR r.filtered_event = FALSE)
                           THEN r.created END) AS clicked_at
           FROM {{ src.email_event }} r
           WHERE r.sent_by_id IS NOT NULL
           GROUP BY r.sent_by_id) e ON e.sent_by_id = s.id
WHERE s.type = 'SENT'
