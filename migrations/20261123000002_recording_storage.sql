-- When a finished recording was copied to object storage (storage.s3_*); NULL: local only.
ALTER TABLE recordings ADD COLUMN stored_at TEXT;
