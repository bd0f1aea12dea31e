-- Reference crm schema (source-schema.md), MariaDB/MySQL dialect.
-- Timestamps are UTC in DATETIME (no session time-zone conversion); booleans are BOOLEAN (TINYINT(1)).
CREATE TABLE sales_reps (
    rep_id BIGINT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    team VARCHAR(255) NOT NULL
);
CREATE TABLE campaigns (
    campaign_id BIGINT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    channel VARCHAR(255) NOT NULL,
    started_on DATE NOT NULL,
    ended_on DATE,
    cost NUMERIC(12, 2) NOT NULL
);
CREATE TABLE marketing_spend (
    spend_date DATE NOT NULL,
    channel VARCHAR(255) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL
);
CREATE INDEX ix_marketing_spend_date ON marketing_spend (spend_date);
CREATE TABLE web_traffic (
    traffic_date DATE NOT NULL,
    channel VARCHAR(255) NOT NULL,
    sessions INTEGER NOT NULL,
    page_views INTEGER NOT NULL
);
CREATE INDEX ix_web_traffic_date ON web_traffic (traffic_date);
CREATE TABLE social_activity (
    activity_date DATE NOT NULL,
    platform VARCHAR(255) NOT NULL,
    impressions INTEGER NOT NULL,
    engagements INTEGER NOT NULL,
    mentions INTEGER NOT NULL
);
CREATE INDEX ix_social_activity_date ON social_activity (activity_date);
CREATE TABLE email_subscribers (
    subscriber_id BIGINT PRIMARY KEY,
    email VARCHAR(255) NOT NULL,
    subscribed_at DATETIME NOT NULL,
    unsubscribed_at DATETIME
);
CREATE TABLE email_messages (
    message_id BIGINT PRIMARY KEY,
    campaign_id BIGINT,
    subscriber_id BIGINT NOT NULL,
    kind VARCHAR(255) NOT NULL,
    sent_at DATETIME NOT NULL,
    delivered BOOLEAN NOT NULL,
    opened_at DATETIME,
    clicked_at DATETIME
);
CREATE INDEX ix_email_messages_sent_at ON email_messages (sent_at);
CREATE TABLE leads (
    lead_id BIGINT PRIMARY KEY,
    created_at DATETIME NOT NULL,
    source_channel VARCHAR(255) NOT NULL,
    campaign_id BIGINT,
    owner_rep_id BIGINT,
    first_contacted_at DATETIME,
    status VARCHAR(255) NOT NULL,
    converted_at DATETIME,
    customer_id BIGINT
);
CREATE INDEX ix_leads_created_at ON leads (created_at);
CREATE INDEX ix_leads_converted_at ON leads (converted_at);
CREATE INDEX ix_leads_first_contacted_at ON leads (first_contacted_at);
CREATE INDEX ix_leads_customer_id ON leads (customer_id);
CREATE TABLE customers (
    customer_id BIGINT PRIMARY KEY,
    created_at DATETIME NOT NULL,
    segment VARCHAR(255) NOT NULL,
    country VARCHAR(255) NOT NULL,
    acquisition_channel VARCHAR(255) NOT NULL,
    campaign_id BIGINT,
    referred_by_customer_id BIGINT,
    churned_at DATETIME
);
CREATE INDEX ix_customers_created_at ON customers (created_at);
CREATE INDEX ix_customers_churned_at ON customers (churned_at);
CREATE TABLE products (
    product_id BIGINT PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    category VARCHAR(255) NOT NULL,
    tier INTEGER NOT NULL,
    list_price NUMERIC(12, 2) NOT NULL
);
CREATE TABLE subscriptions (
    subscription_id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    product_id BIGINT NOT NULL,
    started_at DATETIME NOT NULL,
    term_ends_at DATETIME NOT NULL,
    cancelled_at DATETIME,
    renewed_from_subscription_id BIGINT,
    mrr NUMERIC(12, 2) NOT NULL
);
CREATE INDEX ix_subscriptions_started_at ON subscriptions (started_at);
CREATE INDEX ix_subscriptions_term_ends_at ON subscriptions (term_ends_at);
CREATE INDEX ix_subscriptions_renewed_from ON subscriptions (renewed_from_subscription_id);
CREATE TABLE orders (
    order_id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    ordered_at DATETIME NOT NULL,
    status VARCHAR(255) NOT NULL,
    total_amount NUMERIC(12, 2) NOT NULL,
    campaign_id BIGINT,
    sales_rep_id BIGINT
);
CREATE INDEX ix_orders_ordered_at ON orders (ordered_at);
-- The repeat-purchase extract looks up each buyer's earlier orders.
CREATE INDEX ix_orders_customer_id ON orders (customer_id, ordered_at);
CREATE TABLE order_lines (
    order_id BIGINT NOT NULL,
    line_no INTEGER NOT NULL,
    product_id BIGINT NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price NUMERIC(12, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);
CREATE TABLE opportunities (
    opportunity_id BIGINT PRIMARY KEY,
    kind VARCHAR(255) NOT NULL,
    lead_id BIGINT,
    customer_id BIGINT,
    owner_rep_id BIGINT NOT NULL,
    created_at DATETIME NOT NULL,
    stage VARCHAR(255) NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    proposal_sent_at DATETIME,
    closed_at DATETIME,
    outcome VARCHAR(255)
);
CREATE INDEX ix_opportunities_created_at ON opportunities (created_at);
CREATE INDEX ix_opportunities_closed_at ON opportunities (closed_at);
CREATE INDEX ix_opportunities_proposal_sent_at ON opportunities (proposal_sent_at);
CREATE TABLE opportunity_stage_history (
    opportunity_id BIGINT NOT NULL,
    stage VARCHAR(255) NOT NULL,
    entered_at DATETIME NOT NULL
);
CREATE INDEX ix_opportunity_stage_history_entered_at ON opportunity_stage_history (entered_at);
CREATE INDEX ix_opportunity_stage_history_opportunity ON opportunity_stage_history (opportunity_id, entered_at);
CREATE TABLE sales_activities (
    activity_id BIGINT PRIMARY KEY,
    kind VARCHAR(255) NOT NULL,
    rep_id BIGINT NOT NULL,
    lead_id BIGINT,
    opportunity_id BIGINT,
    occurred_at DATETIME NOT NULL
);
CREATE INDEX ix_sales_activities_occurred_at ON sales_activities (occurred_at);
CREATE INDEX ix_sales_activities_opportunity ON sales_activities (opportunity_id);
CREATE TABLE survey_responses (
    response_id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    survey VARCHAR(255) NOT NULL,
    score INTEGER NOT NULL,
    responded_at DATETIME NOT NULL,
    ticket_id BIGINT,
    comment VARCHAR(255)
);
CREATE INDEX ix_survey_responses_responded_at ON survey_responses (responded_at);
