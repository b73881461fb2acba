-- The job queue (DESIGN.md "Jobs"). Live jobs (waiting, running, waiting to retry) stay in
-- `jobs`, which is kept small; finished ones (completed, discarded, cancelled) move to
-- `job_history` in the statement that finishes them.

CREATE TABLE jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- NULL for system jobs (schedules); otherwise the tenant the job works for.
    workspace_id BIGINT REFERENCES workspaces (id),
    created_by BIGINT REFERENCES users (id),
    kind TEXT NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 100),
    queue TEXT NOT NULL DEFAULT 'default' CHECK (char_length(queue) BETWEEN 1 AND 100),
    args JSONB NOT NULL DEFAULT '{}',
    -- available: waiting for run_at; running: claimed, lease held; failed: an attempt failed and
    -- it waits for its retry at run_at.
    state TEXT NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'running', 'failed')),
    priority SMALLINT NOT NULL DEFAULT 0,
    run_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Counted when claimed, so a worker dying mid-job still uses up an attempt.
    attempt INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
    -- At most one live job per key (a schedule slot, "rescore workspace 7", ...).
    unique_key TEXT CHECK (char_length(unique_key) <= 300),
    lease_expires_at TIMESTAMPTZ,
    locked_by TEXT,
    progress SMALLINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    progress_message TEXT CHECK (char_length(progress_message) <= 500),
    -- Every failed attempt: [{attempt, at, error}].
    errors JSONB NOT NULL DEFAULT '[]',
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
-- The claim path: due jobs of a queue, best priority first, then oldest.
CREATE INDEX jobs_claim_idx ON jobs (queue, priority DESC, run_at, id) WHERE state <> 'running';
CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_workspace_idx ON jobs (workspace_id, id);

CREATE TABLE job_history (
    id BIGINT PRIMARY KEY,
    workspace_id BIGINT REFERENCES workspaces (id),
    created_by BIGINT REFERENCES users (id),
    kind TEXT NOT NULL,
    queue TEXT NOT NULL,
    args JSONB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('completed', 'discarded', 'cancelled')),
    priority SMALLINT NOT NULL,
    run_at TIMESTAMPTZ NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    unique_key TEXT,
    progress SMALLINT NOT NULL,
    progress_message TEXT,
    result JSONB,
    errors JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX job_history_finished_idx ON job_history (finished_at);
CREATE INDEX job_history_workspace_idx ON job_history (workspace_id, id);
