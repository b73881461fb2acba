-- The CRM records: companies, contacts, leads, opportunities, tasks and activities.
-- Common to every record: workspace (tenant), owner, timestamps, soft delete (deleted_at),
-- custom_fields and tags. Enumerations are TEXT guarded by CHECK so an invalid value cannot
-- enter. `search_text` is a lower-cased concatenation of the searchable fields, indexed with
-- trigrams so that "acme" finds "Acme Corporation" without a sequential scan.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE companies (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    domain TEXT CHECK (char_length(domain) <= 253),
    industry TEXT CHECK (char_length(industry) <= 100),
    employee_count INTEGER CHECK (employee_count >= 0),
    annual_revenue NUMERIC(18, 2) CHECK (annual_revenue >= 0),
    phone TEXT CHECK (char_length(phone) <= 50),
    website TEXT CHECK (char_length(website) <= 500),
    address_line1 TEXT CHECK (char_length(address_line1) <= 200),
    address_line2 TEXT CHECK (char_length(address_line2) <= 200),
    city TEXT CHECK (char_length(city) <= 100),
    state TEXT CHECK (char_length(state) <= 100),
    postal_code TEXT CHECK (char_length(postal_code) <= 20),
    country TEXT CHECK (char_length(country) <= 100),
    notes TEXT CHECK (char_length(notes) <= 100000),
    owner_id BIGINT REFERENCES users (id),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    search_text TEXT GENERATED ALWAYS AS (
        lower(coalesce(name, '') || ' ' || coalesce(domain, '') || ' ' || coalesce(phone, '')
              || ' ' || coalesce(website, ''))
    ) STORED
);
CREATE INDEX companies_workspace_idx ON companies (workspace_id, id) WHERE deleted_at IS NULL;
CREATE INDEX companies_owner_idx ON companies (owner_id);
CREATE INDEX companies_name_idx ON companies (workspace_id, lower(name));
CREATE INDEX companies_search_idx ON companies USING gin (search_text gin_trgm_ops);

CREATE TABLE contacts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    salutation TEXT CHECK (char_length(salutation) <= 20),
    first_name TEXT NOT NULL CHECK (char_length(btrim(first_name)) BETWEEN 1 AND 100),
    last_name TEXT CHECK (char_length(last_name) <= 100),
    email TEXT CHECK (email = lower(btrim(email)) AND char_length(email) <= 254),
    phone TEXT CHECK (char_length(phone) <= 50),
    mobile TEXT CHECK (char_length(mobile) <= 50),
    company_id BIGINT REFERENCES companies (id),
    job_title TEXT CHECK (char_length(job_title) <= 200),
    department TEXT CHECK (char_length(department) <= 100),
    address_line1 TEXT CHECK (char_length(address_line1) <= 200),
    address_line2 TEXT CHECK (char_length(address_line2) <= 200),
    city TEXT CHECK (char_length(city) <= 100),
    state TEXT CHECK (char_length(state) <= 100),
    postal_code TEXT CHECK (char_length(postal_code) <= 20),
    country TEXT CHECK (char_length(country) <= 100),
    contact_type TEXT NOT NULL DEFAULT 'prospect'
        CHECK (contact_type IN ('customer', 'prospect', 'vendor', 'partner')),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
    website TEXT CHECK (char_length(website) <= 500),
    linkedin TEXT CHECK (char_length(linkedin) <= 500),
    twitter TEXT CHECK (char_length(twitter) <= 100),
    notes TEXT CHECK (char_length(notes) <= 100000),
    owner_id BIGINT REFERENCES users (id),
    assigned_to_id BIGINT REFERENCES users (id),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    search_text TEXT GENERATED ALWAYS AS (
        lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' '
              || coalesce(email, '') || ' ' || coalesce(phone, '') || ' ' || coalesce(mobile, ''))
    ) STORED
);
-- One live contact per email in a workspace.
CREATE UNIQUE INDEX contacts_email_key ON contacts (workspace_id, email)
    WHERE deleted_at IS NULL AND email IS NOT NULL;
CREATE INDEX contacts_workspace_idx ON contacts (workspace_id, id) WHERE deleted_at IS NULL;
CREATE INDEX contacts_created_idx ON contacts (workspace_id, created_at DESC, id DESC);
CREATE INDEX contacts_company_idx ON contacts (company_id);
CREATE INDEX contacts_owner_idx ON contacts (owner_id);
CREATE INDEX contacts_assignee_idx ON contacts (assigned_to_id);
CREATE INDEX contacts_search_idx ON contacts USING gin (search_text gin_trgm_ops);

CREATE TABLE opportunities (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    description TEXT CHECK (char_length(description) <= 100000),
    company_id BIGINT REFERENCES companies (id),
    contact_id BIGINT REFERENCES contacts (id),
    stage TEXT NOT NULL DEFAULT 'prospecting' CHECK (stage IN
        ('prospecting', 'qualification', 'proposal', 'negotiation', 'closed_won', 'closed_lost')),
    probability SMALLINT NOT NULL CHECK (probability BETWEEN 0 AND 100),
    amount NUMERIC(18, 2) CHECK (amount >= 0),
    currency TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    expected_close_date DATE,
    actual_close_date DATE,
    lost_reason TEXT CHECK (char_length(lost_reason) <= 1000),
    owner_id BIGINT REFERENCES users (id),
    assigned_to_id BIGINT REFERENCES users (id),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    search_text TEXT GENERATED ALWAYS AS (lower(coalesce(name, ''))) STORED
);
CREATE INDEX opportunities_workspace_idx ON opportunities (workspace_id, id) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_stage_idx ON opportunities (workspace_id, stage) WHERE deleted_at IS NULL;
CREATE INDEX opportunities_company_idx ON opportunities (company_id);
CREATE INDEX opportunities_contact_idx ON opportunities (contact_id);
CREATE INDEX opportunities_owner_idx ON opportunities (owner_id);
CREATE INDEX opportunities_assignee_idx ON opportunities (assigned_to_id);
CREATE INDEX opportunities_search_idx ON opportunities USING gin (search_text gin_trgm_ops);

CREATE TABLE leads (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    first_name TEXT CHECK (char_length(first_name) <= 100),
    last_name TEXT CHECK (char_length(last_name) <= 100),
    email TEXT CHECK (email = lower(btrim(email)) AND char_length(email) <= 254),
    phone TEXT CHECK (char_length(phone) <= 50),
    company_name TEXT CHECK (char_length(company_name) <= 200),
    job_title TEXT CHECK (char_length(job_title) <= 200),
    industry TEXT CHECK (char_length(industry) <= 100),
    company_size INTEGER CHECK (company_size >= 0),
    country TEXT CHECK (char_length(country) <= 100),
    state TEXT CHECK (char_length(state) <= 100),
    city TEXT CHECK (char_length(city) <= 100),
    lead_source TEXT CHECK (lead_source IN ('website', 'referral', 'social_media',
        'email_campaign', 'cold_call', 'trade_show', 'advertisement', 'event', 'other')),
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN
        ('new', 'contacted', 'qualified', 'unqualified', 'converted', 'lost')),
    priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    owner_id BIGINT REFERENCES users (id),
    assigned_to_id BIGINT REFERENCES users (id),
    score SMALLINT CHECK (score BETWEEN 0 AND 100),
    estimated_value NUMERIC(18, 2) CHECK (estimated_value >= 0),
    probability SMALLINT CHECK (probability BETWEEN 0 AND 100),
    last_contacted_at TIMESTAMPTZ,
    next_follow_up_at TIMESTAMPTZ,
    converted_at TIMESTAMPTZ,
    converted_contact_id BIGINT REFERENCES contacts (id),
    converted_company_id BIGINT REFERENCES companies (id),
    converted_opportunity_id BIGINT REFERENCES opportunities (id),
    notes TEXT CHECK (char_length(notes) <= 100000),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    -- A lead has at least a name, an email or a company to be worth keeping.
    CONSTRAINT leads_identity_check
        CHECK (num_nonnulls(first_name, last_name, email, company_name) > 0),
    search_text TEXT GENERATED ALWAYS AS (
        lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' '
              || coalesce(email, '') || ' ' || coalesce(company_name, '') || ' '
              || coalesce(phone, ''))
    ) STORED
);
CREATE INDEX leads_workspace_idx ON leads (workspace_id, id) WHERE deleted_at IS NULL;
CREATE INDEX leads_created_idx ON leads (workspace_id, created_at DESC, id DESC);
CREATE INDEX leads_status_idx ON leads (workspace_id, status) WHERE deleted_at IS NULL;
CREATE INDEX leads_owner_idx ON leads (owner_id);
CREATE INDEX leads_assignee_idx ON leads (assigned_to_id);
CREATE INDEX leads_email_idx ON leads (workspace_id, email);
CREATE INDEX leads_search_idx ON leads USING gin (search_text gin_trgm_ops);

CREATE TABLE tasks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    title TEXT NOT NULL CHECK (char_length(btrim(title)) BETWEEN 1 AND 300),
    description TEXT CHECK (char_length(description) <= 100000),
    task_type TEXT NOT NULL DEFAULT 'other' CHECK (task_type IN
        ('call', 'email', 'meeting', 'follow_up', 'proposal', 'demo', 'other')),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'completed', 'cancelled')),
    priority TEXT NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'urgent')),
    due_at TIMESTAMPTZ,
    reminder_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    assigned_to_id BIGINT REFERENCES users (id),
    -- The creator owns the task.
    owner_id BIGINT REFERENCES users (id),
    lead_id BIGINT REFERENCES leads (id),
    contact_id BIGINT REFERENCES contacts (id),
    company_id BIGINT REFERENCES companies (id),
    opportunity_id BIGINT REFERENCES opportunities (id),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    tags TEXT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    search_text TEXT GENERATED ALWAYS AS (lower(coalesce(title, ''))) STORED
);
CREATE INDEX tasks_workspace_idx ON tasks (workspace_id, id) WHERE deleted_at IS NULL;
CREATE INDEX tasks_due_idx ON tasks (workspace_id, due_at) WHERE deleted_at IS NULL;
CREATE INDEX tasks_assignee_idx ON tasks (assigned_to_id);
CREATE INDEX tasks_owner_idx ON tasks (owner_id);
CREATE INDEX tasks_lead_idx ON tasks (lead_id);
CREATE INDEX tasks_contact_idx ON tasks (contact_id);
CREATE INDEX tasks_company_idx ON tasks (company_id);
CREATE INDEX tasks_opportunity_idx ON tasks (opportunity_id);
CREATE INDEX tasks_search_idx ON tasks USING gin (search_text gin_trgm_ops);

-- Notes, calls, emails, meetings and comments logged on exactly one record.
CREATE TABLE activities (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    kind TEXT NOT NULL CHECK (kind IN ('note', 'call', 'email', 'meeting', 'comment')),
    subject TEXT CHECK (char_length(subject) <= 300),
    body TEXT CHECK (char_length(body) <= 100000),
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id BIGINT REFERENCES users (id),
    lead_id BIGINT REFERENCES leads (id),
    contact_id BIGINT REFERENCES contacts (id),
    company_id BIGINT REFERENCES companies (id),
    opportunity_id BIGINT REFERENCES opportunities (id),
    task_id BIGINT REFERENCES tasks (id),
    custom_fields JSONB NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom_fields) = 'object'),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    CHECK (num_nonnulls(lead_id, contact_id, company_id, opportunity_id, task_id) = 1)
);
CREATE INDEX activities_lead_idx ON activities (lead_id, occurred_at DESC) WHERE lead_id IS NOT NULL;
CREATE INDEX activities_contact_idx ON activities (contact_id, occurred_at DESC) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_company_idx ON activities (company_id, occurred_at DESC) WHERE company_id IS NOT NULL;
CREATE INDEX activities_opportunity_idx ON activities (opportunity_id, occurred_at DESC) WHERE opportunity_id IS NOT NULL;
CREATE INDEX activities_task_idx ON activities (task_id, occurred_at DESC) WHERE task_id IS NOT NULL;
CREATE INDEX activities_workspace_idx ON activities (workspace_id, occurred_at DESC);
