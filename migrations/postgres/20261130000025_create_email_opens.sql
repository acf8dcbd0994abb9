-- Opens counted by the pixel of issue emails (`track_opens`): one row per request to
-- `/o/{token}`. The reader is known only with `track_readers`.
CREATE TABLE email_opens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE SET NULL,
    opened_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX email_opens_by_issue ON email_opens (issue_id);
