DROP TABLE record_followers;
DROP TABLE comments;
DROP TABLE notification_deliveries;
DROP TABLE notification_preferences;
DROP INDEX notifications_unread_idx;
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check,
    DROP COLUMN data, DROP COLUMN actor_id;
