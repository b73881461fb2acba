-- The change stream (transactional outbox): one row per change to a record, written in the
-- transaction of the change, so a rolled-back change never has an event.
CREATE TABLE record_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    -- lead, contact, company, opportunity, task, activity
    entity TEXT NOT NULL,
    record_id BIGINT NOT NULL,
    -- created, updated, deleted, restored, converted
    action TEXT NOT NULL,
    actor_id BIGINT REFERENCES users (id),
    -- {"field": {"old": ..., "new": ...}} for the fields that changed (all of them on create).
    changes JSONB NOT NULL DEFAULT '{}',
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX record_events_record_idx ON record_events (workspace_id, entity, record_id, id);
