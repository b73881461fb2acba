DROP TABLE record_events;
