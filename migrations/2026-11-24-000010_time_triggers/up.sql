-- Time-based workflow triggers (issue 7): a workspace's timezone (cron schedules and date
-- fields are read in it), the slot a time-triggered run is for, and how far each
-- time-based workflow has been evaluated.

-- An IANA name (Europe/Paris); the application checks it against the tz database.
ALTER TABLE workspaces ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC'
    CHECK (char_length(timezone) BETWEEN 1 AND 64);

-- The moment a time-triggered run is for (a cron slot, or "2 days before due_at" of the
-- record). One run per (workflow, record, moment): a tick that runs twice, or two processes
-- evaluating at once, cannot start a second one.
ALTER TABLE workflow_runs ADD COLUMN slot TIMESTAMPTZ;
CREATE UNIQUE INDEX workflow_runs_slot_idx ON workflow_runs (workflow_id, record_id, slot)
    WHERE slot IS NOT NULL;

-- Moments up to `evaluated_until` have been looked at. Set to the activation time when a
-- workflow becomes active, so moments that passed while it was a draft or inactive never fire.
CREATE TABLE workflow_time_cursors (
    workflow_id BIGINT PRIMARY KEY REFERENCES workflows (id),
    evaluated_until TIMESTAMPTZ NOT NULL
);
