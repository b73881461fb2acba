-- Notifications (issue 8): who is told what, where and when; comments with mentions, and
-- the followers of records.

ALTER TABLE notifications
    ADD COLUMN actor_id BIGINT REFERENCES users (id),
    -- What the notification is about in detail (changed fields, the comment, the job).
    ADD COLUMN data JSONB NOT NULL DEFAULT '{}',
    ADD CONSTRAINT notifications_kind_check CHECK (
        kind IN ('mention', 'assignment', 'comment', 'update', 'reminder', 'workflow', 'system'));
-- The bell: a user's unread count and list.
CREATE INDEX notifications_unread_idx ON notifications (user_id, id) WHERE read_at IS NULL;

-- Per user; a user without a row has the defaults (`notifications::preferences`).
CREATE TABLE notification_preferences (
    user_id BIGINT PRIMARY KEY REFERENCES users (id),
    -- IANA name; digests and do-not-disturb are read in it.
    timezone TEXT NOT NULL DEFAULT 'UTC' CHECK (char_length(timezone) BETWEEN 1 AND 64),
    -- {"email": true, "push": false, ...}: channels on or off.
    channels JSONB NOT NULL DEFAULT '{}',
    -- {"update": {"email": false}, ...}: per event type and channel.
    matrix JSONB NOT NULL DEFAULT '{}',
    digest TEXT NOT NULL DEFAULT 'off' CHECK (digest IN ('off', 'daily', 'weekly')),
    -- ISO weekday 1 (Monday) to 7, for weekly digests.
    digest_weekday SMALLINT NOT NULL DEFAULT 1 CHECK (digest_weekday BETWEEN 1 AND 7),
    digest_time TIME NOT NULL DEFAULT '08:00',
    dnd_enabled BOOLEAN NOT NULL DEFAULT false,
    dnd_start TIME NOT NULL DEFAULT '22:00',
    dnd_end TIME NOT NULL DEFAULT '07:00',
    -- ISO weekdays the window starts on.
    dnd_days SMALLINT[] NOT NULL DEFAULT '{1,2,3,4,5,6,7}',
    -- E.164, for the sms channel.
    sms_number TEXT CHECK (sms_number ~ '^\+[1-9][0-9]{6,14}$'),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per notification and outside channel (in-app needs none: the notification is it).
CREATE TABLE notification_deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'push', 'sms')),
    -- held: waiting for do-not-disturb to end; pending: queued or being retried.
    status TEXT NOT NULL CHECK (status IN ('held', 'pending', 'sent', 'failed')),
    attempts INT NOT NULL DEFAULT 0,
    error TEXT,
    job_id BIGINT,
    deliver_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notification_deliveries_user_idx ON notification_deliveries (user_id, id);

CREATE TABLE comments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    entity TEXT NOT NULL CHECK (entity IN ('lead', 'contact', 'company', 'opportunity', 'task')),
    record_id BIGINT NOT NULL,
    -- A reply's thread root.
    parent_id BIGINT REFERENCES comments (id),
    author_id BIGINT NOT NULL REFERENCES users (id),
    body TEXT NOT NULL CHECK (char_length(btrim(body)) BETWEEN 1 AND 10000),
    -- The users the body mentions, resolved when written.
    mentions BIGINT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    edited_at TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ
);
CREATE INDEX comments_record_idx ON comments (workspace_id, entity, record_id, id);

-- Who hears about a record's comments and changes besides its owner and assignee.
CREATE TABLE record_followers (
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    entity TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, record_id, user_id)
);
CREATE INDEX record_followers_user_idx ON record_followers (user_id);
