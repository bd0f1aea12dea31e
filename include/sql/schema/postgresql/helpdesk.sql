-- Reference helpdesk schema (source-schema.md), PostgreSQL dialect.
-- Timestamps are UTC in TIMESTAMP (without time zone); booleans are BOOLEAN.
CREATE TABLE agents (
    agent_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    team TEXT NOT NULL,
    hourly_cost NUMERIC(12, 2) NOT NULL
);
CREATE TABLE agent_time (
    agent_id BIGINT NOT NULL,
    work_date DATE NOT NULL,
    hours_logged NUMERIC(6, 2) NOT NULL
);
CREATE INDEX ix_agent_time_work_date ON agent_time (work_date);
CREATE TABLE sla_policies (
    priority TEXT PRIMARY KEY,
    first_response_minutes INTEGER NOT NULL,
    resolution_minutes INTEGER NOT NULL
);
CREATE TABLE tickets (
    ticket_id BIGINT PRIMARY KEY,
    customer_id BIGINT,
    channel TEXT NOT NULL,
    category TEXT NOT NULL,
    priority TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee_agent_id BIGINT,
    created_at TIMESTAMP NOT NULL,
    first_response_at TIMESTAMP,
    resolved_at TIMESTAMP,
    closed_at TIMESTAMP,
    reopen_count INTEGER NOT NULL
);
CREATE INDEX ix_tickets_created_at ON tickets (created_at);
CREATE INDEX ix_tickets_resolved_at ON tickets (resolved_at);
CREATE INDEX ix_tickets_first_response_at ON tickets (first_response_at);
CREATE TABLE ticket_messages (
    message_id BIGINT PRIMARY KEY,
    ticket_id BIGINT NOT NULL,
    author TEXT NOT NULL,
    agent_id BIGINT,
    created_at TIMESTAMP NOT NULL,
    public BOOLEAN NOT NULL
);
CREATE INDEX ix_ticket_messages_ticket_id ON ticket_messages (ticket_id);
CREATE TABLE calls (
    call_id BIGINT PRIMARY KEY,
    direction TEXT NOT NULL,
    customer_id BIGINT,
    ticket_id BIGINT,
    agent_id BIGINT,
    queued_at TIMESTAMP NOT NULL,
    answered_at TIMESTAMP,
    ended_at TIMESTAMP NOT NULL,
    is_callback BOOLEAN NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX ix_calls_queued_at ON calls (queued_at);
