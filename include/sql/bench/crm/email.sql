-- marketing.email_open_rate, marketing.email_click_rate, marketing.email_list_growth_rate
SELECT opened::float / NULLIF(delivered, 0) AS email_open_rate, clicked::float / NULLIF(delivered, 0) AS email_click_rate,
       (subscribed - unsubscribed)::float / NULLIF(list_at_start, 0) AS email_list_growth_rate
FROM (SELECT COUNT(*) FILTER (WHERE delivered) AS delivered,
             COUNT(*) FILTER (WHERE delivered AND opened_at IS NOT NULL) AS opened,
             COUNT(*) FILTER (WHERE delivered AND clicked_at IS NOT NULL) AS clicked
        FROM email_messages WHERE kind = 'marketing' AND sent_at >= :start AND sent_at < :end) m,
     (SELECT COUNT(*) FILTER (WHERE subscribed_at >= :start AND subscribed_at < :end) AS subscribed,
             COUNT(*) FILTER (WHERE unsubscribed_at >= :start AND unsubscribed_at < :end) AS unsubscribed,
             COUNT(*) FILTER (WHERE subscribed_at < :start AND (unsubscribed_at IS NULL OR unsubscribed_at >= :start)) AS list_at_start
        FROM email_subscribers) s
