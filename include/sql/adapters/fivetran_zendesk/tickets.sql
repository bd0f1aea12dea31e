-- The reference `tickets` from Zendesk's ticket, its status history and its comments.
-- resolved_at: the last change to solved (or the first to closed) of a ticket solved or closed now;
-- a ticket solved or closed with no such change in the history (synced before the connector kept
-- it) is resolved at its updated_at, the last change of a ticket that can change no more once closed;
-- reopen_count: changes from solved back to new/open/pending/hold; first_response_at: the first
-- public comment by an agent or admin after the ticket's first comment. Deleted tickets are left out.
--
-- Only what a period's extracts can want (the period's start, :start, is every one's own bound):
-- the tickets with any activity since the start (created, updated, a status change or a comment at
-- or after it), derived, and those still open, which need nothing derived to be open. A ticket solved
-- or closed without any was created, answered and resolved before the period: no extract of it
-- wants the ticket. Deriving every ticket would read the whole history again on every run, so that
-- the cost grew with the helpdesk's age rather than with the period. A ticket without an updated_at
-- (a sync without the column) is always derived: nothing bounds its resolution. `active` is computed
-- once per query (PostgreSQL keeps a CTE read three times aside).
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
       COALESCE(s.reopens, 0) AS reopen_count
FROM {{ src.ticket }} t
-- two derived tables, one pass over each history: the status changes (the last solve, the first
-- close and the reopens, the changes from solved back to new/open/pending/hold, through the only
-- window over them) and the comments (the first reply: public, not deleted, by an agent or admin,
-- after the ticket's first comment of any kind by anyone)
LEFT JOIN (
    SELECT h.ticket_id,
           MAX(CASE WHEN h.value = 'solved' THEN h.updated END) AS last_solved_at,
           MIN(CASE WHEN h.value = 'closed' THEN h.updated END) AS first_closed_at,
           SUM(CASE WHEN h.value IN ('new', 'open', 'pending', 'hold', 'on-hold') AND h.previous = 'solved' THEN 1 ELSE 0 END) AS reopens
    FROM (
        SELECT f.ticket_id, f.value, f.updated,
               LAG(f.value) OVER (PARTITION BY f.ticket_id ORDER BY f.updated) AS previous
        FROM {{ src.ticket_field_history }} f
        WHERE f.field_name = 'status' AND f.ticket_id IN (SELECT id FROM active)
    ) h
    GROUP BY h.ticket_id
) s ON s.ticket_id = t.id
LEFT JOIN (
    SELECT c.ticket_id,
           MIN(CASE WHEN c.public = TRUE AND (c._fivetran_deleted IS NULL OR c._fivetran_deleted = FALSE)
                     AND g.id IS NOT NULL AND c.created > c.first_at THEN c.created END) AS first_response_at
    FROM (
        SELECT k.ticket_id, k.user_id, k.public, k._fivetran_deleted, k.created,
               MIN(k.created) OVER (PARTITION BY k.ticket_id) AS first_at
        FROM {{ src.ticket_comment }} k
        WHERE k.ticket_id IN (SELECT id FROM active)
    ) c
    LEFT JOIN (SELECT u.id FROM {{ src.user }} u WHERE u.role IN ('agent', 'admin')) g ON g.id = c.user_id
    GROUP BY c.ticket_id
) r ON r.ticket_id = t.id
WHERE (t._fivetran_deleted IS NULL OR t._fivetran_deleted = FALSE) AND t.status <> 'deleted'
  -- and only the rows a period extract can want: the derived ones, and those still open (a ticket
  -- solved or closed before the period's start was created, answered and resolved before it)
  AND (t.id IN (SELECT id FROM active) OR COALESCE(t.status, '') NOT IN ('solved', 'closed'))
