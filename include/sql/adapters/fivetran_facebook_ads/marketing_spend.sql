-- The reference `marketing_spend`: Facebook Ads spend per ad and day (basic_ad), all of it paid
-- social.
SELECT b.date AS spend_date,
       {{ as_text("'social'") }} AS channel,
       b.spend AS amount
FROM {{ src.basic_ad }} b
