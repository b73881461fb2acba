DROP INDEX tasks_open_due_idx;
ALTER TABLE tasks DROP COLUMN due_soon_event_for;
ALTER TABLE tasks DROP COLUMN overdue_event_for;
DROP TABLE schedule_runs;
