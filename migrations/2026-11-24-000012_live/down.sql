DROP TRIGGER notifications_live ON notifications;
DROP TRIGGER record_events_live ON record_events;
DROP FUNCTION live_announce();
