-- Workflow automation (issue 7): definitions with versions, runs with their steps, and the
-- marks that let the engine tell a workflow's own changes apart (the loop guard).

CREATE TABLE workflows (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    name TEXT NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
    description TEXT CHECK (char_length(description) <= 5000),
    status TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'inactive')),
    -- The definition in force; every earlier one stays in workflow_versions.
    version INT NOT NULL DEFAULT 1,
    entity TEXT NOT NULL CHECK (entity IN ('lead', 'contact', 'company', 'opportunity', 'task')),
    trigger JSONB NOT NULL,
    conditions JSONB,
    actions JSONB NOT NULL,
    -- Signs this workflow's webhook calls (HMAC-SHA256); shown to admins and managers.
    webhook_secret TEXT NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ
);
-- What the engine reads for every event: the active workflows of a workspace and entity.
CREATE INDEX workflows_active_idx ON workflows (workspace_id, entity)
    WHERE status = 'active' AND deleted_at IS NULL;
CREATE INDEX workflows_workspace_idx ON workflows (workspace_id, id) WHERE deleted_at IS NULL;

-- Every definition a workflow has had: runs keep the version they started with.
CREATE TABLE workflow_versions (
    workflow_id BIGINT NOT NULL REFERENCES workflows (id),
    version INT NOT NULL,
    entity TEXT NOT NULL,
    trigger JSONB NOT NULL,
    conditions JSONB,
    actions JSONB NOT NULL,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE workflow_runs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    workflow_id BIGINT NOT NULL,
    version INT NOT NULL,
    entity TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    status TEXT NOT NULL DEFAULT 'running'
        CHECK (status IN ('running', 'waiting', 'completed', 'failed', 'cancelled')),
    -- What started it: {type, eventId, action, changes, actorId} or {type: "manual", ...}.
    trigger JSONB NOT NULL,
    -- How many workflow runs led to this one (0: a person's change); the loop guard's count.
    depth INT NOT NULL DEFAULT 0,
    -- The next instruction of the compiled action list.
    pc INT NOT NULL DEFAULT 0,
    wake_at TIMESTAMPTZ,
    error TEXT,
    started_by BIGINT REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE INDEX workflow_runs_workflow_idx ON workflow_runs (workflow_id, id);
-- The per-workspace rate cap counts the last minute's runs.
CREATE INDEX workflow_runs_recent_idx ON workflow_runs (workspace_id, created_at);

-- One row per executed instruction, written before its side effect and finished after it.
CREATE TABLE workflow_run_steps (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
    pc INT NOT NULL,
    -- Where the action sits in the definition: actions[2].then[0].
    path TEXT NOT NULL,
    action TEXT NOT NULL,
    params JSONB,
    status TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    attempt INT NOT NULL DEFAULT 1,
    result JSONB,
    error TEXT,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    UNIQUE (run_id, pc)
);

-- Round-robin positions, per workflow and step.
CREATE TABLE workflow_counters (
    workflow_id BIGINT NOT NULL REFERENCES workflows (id),
    path TEXT NOT NULL,
    counter BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, path)
);

-- In-app notifications (the notifications issue extends this table).
CREATE TABLE notifications (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    title TEXT NOT NULL CHECK (char_length(title) <= 500),
    message TEXT NOT NULL CHECK (char_length(message) <= 10000),
    entity TEXT,
    record_id BIGINT,
    read_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_idx ON notifications (user_id, id);

-- The run whose action made the change (none for people and other background work).
ALTER TABLE record_events ADD COLUMN caused_by_run BIGINT;
