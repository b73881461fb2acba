DROP TABLE workflow_time_cursors;
DROP INDEX workflow_runs_slot_idx;
ALTER TABLE workflow_runs DROP COLUMN slot;
ALTER TABLE workspaces DROP COLUMN timezone;
