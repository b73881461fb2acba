-- Undo that survives a failure (issue 5). An undo works in batches, each its own transaction;
-- each batch now also moves a checkpoint on the import (in that same transaction), so a retry
-- carries on after the last committed batch instead of starting again and reporting the fields
-- it already put back as conflicts.
--
-- `undo_failed`: an undo attempt stopped on an error (`undo_failure` says why); undoImport or
-- the background job's retry resumes it from the checkpoint.
ALTER TABLE imports DROP CONSTRAINT imports_status_check;
ALTER TABLE imports ADD CONSTRAINT imports_status_check CHECK (status IN
    ('uploading', 'queued', 'running', 'completed', 'failed', 'undoing', 'undo_failed', 'undone'));
ALTER TABLE imports ADD COLUMN undo_failure TEXT;
-- The checkpoint: the last `import_created` batch (seq) and the last `import_updated` record
-- the undo has finished. `undo_result` holds the totals so far.
ALTER TABLE imports ADD COLUMN undo_created_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE imports ADD COLUMN undo_updated_id BIGINT NOT NULL DEFAULT 0;
-- An undo a version without checkpoints left `undoing` resumes from the start: fields it had
-- already put back no longer hold what the import wrote, so they are reported as conflicts
-- (and left as they are), never written twice.

-- The batches of created IDs get an order to resume in.
ALTER TABLE import_created ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY;
DROP INDEX import_created_idx;
CREATE INDEX import_created_idx ON import_created (import_id, seq);
