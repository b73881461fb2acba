-- CSV imports (issue 5). An import keeps its uploaded file in chunks until it has run (any
-- worker process can read it, and a retried job resumes after the last committed batch),
-- every failed row with its messages (errors.csv), the IDs it created and the previous values
-- of the records it updated (undo).
CREATE TABLE imports (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    created_by BIGINT NOT NULL REFERENCES users (id),
    resource TEXT NOT NULL
        CHECK (resource IN ('leads', 'contacts', 'companies', 'opportunities', 'tasks')),
    file_name TEXT NOT NULL CHECK (char_length(file_name) <= 255),
    file_bytes BIGINT NOT NULL DEFAULT 0,
    -- The request's options as given (mapping, update_existing, match_on, skip_errors, dry_run).
    options JSONB NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'uploading' CHECK (status IN
        ('uploading', 'queued', 'running', 'completed', 'failed', 'undoing', 'undone')),
    dry_run BOOLEAN NOT NULL DEFAULT false,
    job_id BIGINT,
    total_rows BIGINT NOT NULL DEFAULT 0,
    imported BIGINT NOT NULL DEFAULT 0,
    updated BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    errors BIGINT NOT NULL DEFAULT 0,
    -- The file line of the last row whose effects are committed: a retried run starts after it.
    committed_line BIGINT NOT NULL DEFAULT 0,
    -- The file's headers, what each became and the headers that were ignored.
    headers TEXT[] NOT NULL DEFAULT '{}',
    columns JSONB NOT NULL DEFAULT '[]',
    ignored_columns TEXT[] NOT NULL DEFAULT '{}',
    -- Why the whole import failed (a file-level problem), when it did.
    failure TEXT,
    undo_result JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    undone_at TIMESTAMPTZ,
    undone_by BIGINT REFERENCES users (id)
);
CREATE INDEX imports_workspace_idx ON imports (workspace_id, id DESC);

CREATE TABLE import_file_chunks (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (import_id, seq)
);

-- One row per failed (or skipped) line: its cells as read and [{column, value, error}].
CREATE TABLE import_failed_rows (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line BIGINT NOT NULL,
    cells TEXT[] NOT NULL,
    problems JSONB NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- The records an import created, one row per written batch.
CREATE TABLE import_created (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    ids BIGINT[] NOT NULL
);
CREATE INDEX import_created_idx ON import_created (import_id);

-- The records an import updated: the fields it changed, before and after.
CREATE TABLE import_updated (
    import_id BIGINT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    record_id BIGINT NOT NULL,
    before JSONB NOT NULL,
    after JSONB NOT NULL,
    PRIMARY KEY (import_id, record_id)
);

-- Imports match companies on their domain.
CREATE INDEX companies_domain_idx ON companies (workspace_id, domain) WHERE deleted_at IS NULL;
