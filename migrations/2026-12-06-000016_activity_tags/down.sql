ALTER TABLE activities DROP COLUMN tags;
