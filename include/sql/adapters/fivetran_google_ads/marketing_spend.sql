-- The reference `marketing_spend`: Google Ads cost per day from campaign_stats (a row per campaign,
-- day, device and network), the channel from the campaign's type (campaign_history keeps a row per
-- version of a campaign: one type per campaign is taken, it does not change).
SELECT s.date AS spend_date,
       {{ case('c.advertising_channel_type', mappings.channels) }} AS channel,
       s.cost_micros / 1000000.0 AS amount
FROM {{ src.campaign_stats }} s
LEFT JOIN (SELECT h.id, MAX(h.advertising_channel_type) AS advertising_channel_type
           FROM {{ src.campaign_history }} h
           GROUP BY h.id) c ON c.id = s.id
