SELECT activity_date, platform, impressions, engagements, mentions
FROM social_activity
WHERE activity_date >= :start_date AND activity_date < :end_date
