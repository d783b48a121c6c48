-- A conference's recording (Telnyx `conference.recording.saved`): the conference it
-- records; its call columns name the call that created the conference.
ALTER TABLE recordings ADD COLUMN conference_id TEXT;
