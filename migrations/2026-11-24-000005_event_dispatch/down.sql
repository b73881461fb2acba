DROP TRIGGER record_events_notify ON record_events;
DROP FUNCTION notify_record_events();
DROP TABLE event_consumers;
DROP TABLE event_stream;
DROP INDEX record_events_unsealed_idx;
DROP INDEX record_events_seq_idx;
ALTER TABLE record_events DROP COLUMN seq;
