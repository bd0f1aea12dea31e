-- Reference helpdesk schema (source-schema.md), MariaDB/MySQL dialect.
-- Timestamps are UTC in DATETIME (no session time-zone conversion); booleans are BOOLEAN (TINYINT(1)).
CREATE TABLE agents (
    agent_id BIGINT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    team VARCHAR(255) NOT NULL,
    hourly_cost NUMERIC(12, 2) NOT NULL
);
CREATE TABLE agent_time (
    agent_id BIGINT NOT NULL,
    work_date DATE NOT NULL,
    hours_logged NUMERIC(6, 2) NOT NULL
);
CREATE INDEX ix_agent_time_work_date ON agent_time (work_date);
CREATE TABLE sla_policies (
    priority VARCHAR(255) PRIMARY KEY,
    first_response_minutes INTEGER NOT NULL,
    resolution_minutes INTEGER NOT NULL
);
CREATE TABLE tickets (
    ticket_id BIGINT PRIMARY KEY,
    customer_id BIGINT,
    channel VARCHAR(255) NOT NULL,
    category VARCHAR(255) NOT NULL,
    priority VARCHAR(255) NOT NULL,
    status VARCHAR(255) NOT NULL,
    assignee_agent_id BIGINT,
    created_at DATETIME NOT NULL,
    first_response_at DATETIME,
    resolved_at DATETIME,
    closed_at DATETIME,
    reopen_count INTEGER NOT NULL
);
CREATE INDEX ix_tickets_created_at ON tickets (created_at);
CREATE INDEX ix_tickets_resolved_at ON tickets (resolved_at);
CREATE INDEX ix_tickets_first_response_at ON tickets (first_response_at);
CREATE TABLE ticket_messages (
    message_id BIGINT PRIMARY KEY,
    ticket_id BIGINT NOT NULL,
    author VARCHAR(255) NOT NULL,
    agent_id BIGINT,
    created_at DATETIME NOT NULL,
    public BOOLEAN NOT NULL
);
CREATE INDEX ix_ticket_messages_ticket_id ON ticket_messages (ticket_id);
CREATE TABLE calls (
    call_id BIGINT PRIMARY KEY,
    direction VARCHAR(255) NOT NULL,
    customer_id BIGINT,
    ticket_id BIGINT,
    agent_id BIGINT,
    queued_at DATETIME NOT NULL,
    answered_at DATETIME,
    ended_at DATETIME NOT NULL,
    is_callback BOOLEAN NOT NULL,
    outcome VARCHAR(255) NOT NULL
);
CREATE INDEX ix_calls_queued_at ON calls (queued_at);
