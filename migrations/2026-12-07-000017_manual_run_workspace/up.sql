-- The workspace whose admin triggered a run by hand: a manual run acts on that workspace only
-- (a scheduled tick acts on every workspace whose moment it is).
ALTER TABLE schedule_runs ADD COLUMN workspace_id BIGINT REFERENCES workspaces (id) ON DELETE CASCADE;
