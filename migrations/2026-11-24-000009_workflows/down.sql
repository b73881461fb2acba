ALTER TABLE record_events DROP COLUMN caused_by_run;
DROP TABLE notifications;
DROP TABLE workflow_counters;
DROP TABLE workflow_run_steps;
DROP TABLE workflow_runs;
DROP TABLE workflow_versions;
DROP TABLE workflows;
