-- One row per user and digest slot: the unique key makes each slot's digest happen once,
-- however many processes tick and however often a tick repeats.
CREATE TABLE notification_digests (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    slot TIMESTAMPTZ NOT NULL,
    -- The digest covers changes after this moment (the previous slot).
    since TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'empty')),
    -- How many items the mail listed.
    items INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ,
    PRIMARY KEY (user_id, slot)
);

-- The activity feed reads a workspace's events newest first; digests read a recent window.
CREATE INDEX record_events_workspace_idx ON record_events (workspace_id, id);
