DROP INDEX record_events_workspace_idx;
DROP TABLE notification_digests;
