-- Acquisition spend by day and channel; spend_date is a local calendar date.
SELECT spend_date, channel, amount
FROM marketing_spend
WHERE spend_date >= :start_date AND spend_date < :end_date
