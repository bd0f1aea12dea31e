-- marketing.spend, marketing.cac, marketing.roi, marketing.sessions, marketing.page_views,
-- marketing.social_engagement_rate, marketing.social_mentions, marketing.leads_created,
-- marketing.campaign_responses, marketing.lead_conversion_rate, marketing.campaigns_active
SELECT spend, spend / NULLIF(new_customers, 0) AS cac, (campaign_revenue - spend) / NULLIF(spend, 0) AS roi,
       sessions, page_views, engagements::float / NULLIF(impressions, 0) AS social_engagement_rate, mentions AS social_mentions,
       leads_created, campaign_responses, converted::float / NULLIF(leads_created, 0) AS lead_conversion_rate,
       campaigns_active
FROM (SELECT SUM(amount) AS spend FROM marketing_spend WHERE spend_date >= :start_date AND spend_date < :end_date) s,
     (SELECT COUNT(*) AS new_customers FROM customers WHERE created_at >= :start AND created_at < :end) n,
     (SELECT SUM(total_amount) AS campaign_revenue FROM orders
       WHERE status = 'completed' AND campaign_id IS NOT NULL AND ordered_at >= :start AND ordered_at < :end) r,
     (SELECT SUM(sessions) AS sessions, SUM(page_views) AS page_views FROM web_traffic
       WHERE traffic_date >= :start_date AND traffic_date < :end_date) w,
     (SELECT SUM(impressions) AS impressions, SUM(engagements) AS engagements, SUM(mentions) AS mentions
        FROM social_activity WHERE activity_date >= :start_date AND activity_date < :end_date) so,
     (SELECT COUNT(*) FILTER (WHERE created_at >= :start AND created_at < :end) AS leads_created,
             COUNT(*) FILTER (WHERE created_at >= :start AND created_at < :end AND campaign_id IS NOT NULL) AS campaign_responses,
             COUNT(*) FILTER (WHERE converted_at >= :start AND converted_at < :end) AS converted
        FROM leads WHERE (created_at >= :start AND created_at < :end) OR (converted_at >= :start AND converted_at < :end)) l,
     (SELECT COUNT(*) AS campaigns_active FROM campaigns
       WHERE started_on < :end_date AND (ended_on IS NULL OR ended_on >= :start_date)) c
