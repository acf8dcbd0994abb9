-- Opens counted by the pixel of issue emails (`track_opens`): one row per request to
-- `/o/{token}`. The reader is known only with `track_readers`.
CREATE TABLE email_opens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    opened_at TEXT NOT NULL
);

CREATE INDEX email_opens_by_issue ON email_opens (issue_id);
