DROP INDEX import_created_idx;
CREATE INDEX import_created_idx ON import_created (import_id);
ALTER TABLE import_created DROP COLUMN seq;
ALTER TABLE imports DROP COLUMN undo_updated_id;
ALTER TABLE imports DROP COLUMN undo_created_seq;
ALTER TABLE imports DROP COLUMN undo_failure;
UPDATE imports SET status = 'undoing' WHERE status = 'undo_failed';
ALTER TABLE imports DROP CONSTRAINT imports_status_check;
ALTER TABLE imports ADD CONSTRAINT imports_status_check CHECK (status IN
    ('uploading', 'queued', 'running', 'completed', 'failed', 'undoing', 'undone'));
