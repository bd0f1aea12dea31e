-- The reference `tickets` from Zendesk's ticket, its status history and its comments.
-- resolved_at: the last change to solved (or the first to closed) of a ticket solved or closed now;
-- a ticket solved or closed with no such change in the history (synced before the connector kept
-- it) is resolved at its updated_at, the last change of a ticket that can change no more once closed;
-- reopen_count: changes from solved back to new/open/pending/hold; first_response_at: the first
-- public comment by an agent or admin after the ticket's first comment. Deleted tickets are left out.
--
-- Derived for the tickets with any activity since the period's start (:start, every period
-- extract's own bound) only: created, updated, a status change or a comment at or after it. A ticket
-- without any was created, answered and (if it is solved or closed) resolved before the period, so
-- every period extract sees it alike whether its times are derived or not (its resolution then reads
-- as its updated_at, also before the period); deriving them would read the whole history again on
-- every extract, so that the cost grew with the helpdesk's age rather than with the period. A ticket
-- without an updated_at (a sync without the column) is always derived: nothing bounds its resolution.
-- `active` is computed once per query (PostgreSQL keeps a CTE read three times aside).
WITH active AS (
SELECT a.id FROM {{ src.ticket }} a WHERE a.created_at >= :start OR a.updated_at >= :start OR a.updated_at IS NULL
UNION SELECT e.ticket_id FROM {{ src.ticket_field_history }} e WHERE e.field_name = 'status' AND e.updated >= :start
UNION SELECT k.ticket_id FROM {{ src.ticket_comment }} k WHERE k.created >= :start
)
SELECT t.id AS ticket_id,
       NULL AS customer_id,
       {{ case('t.via_channel', mappings.channels) }} AS channel,
       {{ case('t.type', mappings.categories) }} AS category,
       t.priority,
       {{ case('t.status', mappings.statuses) }} AS status,
       -- the team: Zendesk files a ticket under a group (group_id), whoever is its assignee; the
       -- reference takes the team from the assignee, so a ticket with a group is read as assigned to
       -- its group's seat (agents.sql: an agent row per group, id minus the group's id); one without
       -- a group (a sync without group_id) keeps its assignee and his team
       CASE WHEN t.group_id IS NOT NULL THEN -t.group_id ELSE t.assignee_id END AS assignee_agent_id,
       t.created_at,
       r.first_response_at,
       CASE WHEN t.status IN ('solved', 'closed') THEN COALESCE(s.last_solved_at, s.first_closed_at, t.updated_at) END AS resolved_at,
       COALESCE(s.first_closed_at, CASE WHEN t.status = 'closed' THEN t.updated_at END) AS closed_at,
       COALESCE(o.reopens, 0) AS reopen_count
FROM {{ src.ticket }} t
-- three derived tables, each joined on its ticket id and unique on it, so that an extract that does
-- not use one's columns leaves it out (PostgreSQL removes such a join): the resolution times (one
-- hash aggregate), the reopens (the only window over the status history) and the first reply
LEFT JOIN (
    SELECT f.ticket_id,
           MAX(CASE WHEN f.value = 'solved' THEN f.updated END) AS last_solved_at,
           MIN(CASE WHEN f.value = 'closed' THEN f.updated END) AS first_closed_at
    FROM {{ src.ticket_field_history }} f
    WHERE f.field_name = 'status' AND f.ticket_id IN (SELECT id FROM active)
    GROUP BY f.ticket_id
) s ON s.ticket_id = t.id
LEFT JOIN (
    SELECT h.ticket_id,
           SUM(CASE WHEN h.value IN ('new', 'open', 'pending', 'hold', 'on-hold') AND h.previous = 'solved' THEN 1 ELSE 0 END) AS reopens
    FROM (
        SELECT f.ticket_id, f.value,
               LAG(f.value) OVER (PARTITION BY f.ticket_id ORDER BY f.updated) AS previous
        FROM {{ src.ticket_field_history }} f
        WHERE f.field_name = 'status' AND f.ticket_id IN (SELECT id FROM active)
    ) h
    GROUP BY h.ticket_id
) o ON o.ticket_id = t.id
LEFT JOIN (
    -- a reply is public, by an agent or admin, after the ticket's first comment (of any kind)
    SELECT w.ticket_id, MIN(w.created) AS first_response_at
    FROM {{ src.ticket_comment }} w
    JOIN (SELECT c.ticket_id, MIN(c.created) AS first_at FROM {{ src.ticket_comment }} c
          WHERE c.ticket_id IN (SELECT id FROM active) GROUP BY c.ticket_id) f
      ON f.ticket_id = w.ticket_id
    JOIN {{ src.user }} u ON u.id = w.user_id
    WHERE w.public = TRUE AND (w._fivetran_deleted IS NULL OR w._fivetran_deleted = FALSE)
      AND u.role IN ('agent', 'admin') AND w.created > f.first_at AND w.ticket_id IN (SELECT id FROM active)
    GROUP BY w.ticket_id
) r ON r.ticket_id = t.id
WHERE (t._fivetran_deleted IS NULL OR t._fivetran_deleted = FALSE) AND t.status <> 'deleted'
