ALTER TABLE schedule_runs DROP COLUMN workspace_id;
