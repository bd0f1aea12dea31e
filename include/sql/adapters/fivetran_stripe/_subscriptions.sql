-- The current version of each subscription: from subscription_history (its current rows) where
-- the connector syncs it, else from subscription (an older connector's table), as Fivetran's
-- package reads one or the other: a migrated connector may keep both, and the old table's rows
-- are then stale (a subscription there may have no current version in the history: it is gone).
SELECT h.id, h.customer_id, h.start_date, h.current_period_end, h.ended_at, h.livemode
FROM {{ src.subscription_history }} h
UNION ALL
SELECT s.id, s.customer_id, s.start_date, s.current_period_end, s.ended_at, s.livemode
FROM {{ src.subscription }} s
WHERE NOT EXISTS (SELECT 1 FROM {{ src.subscription_history }} h2)
