-- Delivery of the change stream to consumers (DESIGN.md "Data rules": the outbox).
--
-- Event IDs come from a sequence, so they do not follow commit order: a transaction that
-- drew ID 10 can commit after the one that drew ID 11, and a reader that had moved past 11
-- would never see 10. One sealer at a time (the lock on `event_stream`) numbers the committed,
-- unnumbered events in ID order with `seq`; a later seal only ever numbers later commits, so
-- consumers read by `seq` and never miss one. An event whose transaction rolled back never
-- becomes visible, so it is never numbered nor delivered.
ALTER TABLE record_events ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX record_events_seq_idx ON record_events (seq);
CREATE INDEX record_events_unsealed_idx ON record_events (id) WHERE seq IS NULL;

CREATE TABLE event_stream (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    -- The highest seq handed out.
    sealed_seq BIGINT NOT NULL DEFAULT 0
);

-- Events written before this migration are numbered now, in ID order.
UPDATE record_events e SET seq = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM record_events) AS numbered
WHERE e.id = numbered.id;
INSERT INTO event_stream (sealed_seq) SELECT count(*) FROM record_events;

-- One cursor per consumer: the last seq it has handled. The cursor moves in the transaction
-- in which the consumer handles the events, so each event takes effect once per consumer.
CREATE TABLE event_consumers (
    name TEXT PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 100),
    position BIGINT NOT NULL,
    -- Failures in a row and the last one, for operators; reset by a success.
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Wakes dispatchers when events commit (once per statement; PostgreSQL folds duplicates
-- within a transaction). Polling covers a missed notification.
CREATE FUNCTION notify_record_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mycrm_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER record_events_notify AFTER INSERT ON record_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_record_events();
