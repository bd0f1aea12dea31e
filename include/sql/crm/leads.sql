-- Leads created, first contacted or converted in the period.
SELECT lead_id, created_at, source_channel AS channel, campaign_id, first_contacted_at, converted_at
FROM leads
WHERE (created_at >= :start AND created_at < :end)
   OR (first_contacted_at >= :start AND first_contacted_at < :end)
   OR (converted_at >= :start AND converted_at < :end)
