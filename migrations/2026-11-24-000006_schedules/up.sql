-- Schedules (DESIGN.md "Jobs"): every process ticks every schedule; a slot becomes a run
-- only through this table's primary key, so N processes give one run per slot, and a slot
-- already run is never run again after a restart.
CREATE TABLE schedule_runs (
    schedule TEXT NOT NULL,
    -- The cron occurrence this run is for (a manual trigger: the moment it was asked for).
    slot TIMESTAMPTZ NOT NULL,
    -- tick, catch_up (a slot missed while no process ran), manual
    reason TEXT NOT NULL CHECK (reason IN ('tick', 'catch_up', 'manual')),
    -- NULL: skipped, the schedule's previous run was still waiting or running.
    job_id BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, slot)
);

-- The due date each task's overdue / due-soon event was emitted for: once per due date, and
-- again if the task is moved to a new date that passes too.
ALTER TABLE tasks ADD COLUMN overdue_event_for TIMESTAMPTZ;
ALTER TABLE tasks ADD COLUMN due_soon_event_for TIMESTAMPTZ;
CREATE INDEX tasks_open_due_idx ON tasks (due_at)
    WHERE deleted_at IS NULL AND due_at IS NOT NULL AND status IN ('pending', 'in_progress');
