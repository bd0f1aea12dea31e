SELECT traffic_date, channel, sessions, page_views
FROM web_traffic
WHERE traffic_date >= :start_date AND traffic_date < :end_date
