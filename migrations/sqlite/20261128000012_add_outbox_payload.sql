-- Notices to editors (slot reminders, missed issues) carry their recipient and text here.
ALTER TABLE mail_outbox ADD COLUMN payload TEXT;
