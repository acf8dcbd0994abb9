-- Retention: once `delivery_retention` has passed since a send finished, its sent deliveries
-- are deleted in small batches and counted here instead (sent, in doubt, and readers who left
-- within 7 days of the send, for the report). Failed and skipped rows, and the copies a bounce
-- or complaint was reported for, stay. `folded_at` is set when nothing is left to fold.
ALTER TABLE issues ADD COLUMN folded_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN folded_in_doubt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN folded_left BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN folded_at TIMESTAMPTZ;

CREATE INDEX issues_to_fold ON issues (finished_at) WHERE folded_at IS NULL AND finished_at IS NOT NULL;

-- A fold keeps a copy when its reader has a bounce or complaint for that issue: looked up by
-- reader and issue (the reader-only index is its prefix, so it goes).
CREATE INDEX mail_events_reader_issue ON mail_events (subscriber_id, issue_id);
DROP INDEX mail_events_subscriber;
