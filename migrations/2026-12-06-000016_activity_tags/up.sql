-- Activities carry tags like every other CRM record ("follow-up", "pricing"), filterable later.
ALTER TABLE activities ADD COLUMN tags TEXT[] NOT NULL DEFAULT '{}';
