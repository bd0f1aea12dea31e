-- Campaigns running at some point of the period: started before its end, not ended before its start.
SELECT campaign_id, channel, started_on, ended_on
FROM campaigns
WHERE started_on < :end_date AND (ended_on IS NULL OR ended_on >= :start_date)
