-- The welcome email a reader gets once, when they first confirm: one row, written by the
-- editor in Markdown. Until it exists (and while it is switched off) nobody is welcomed.
CREATE TABLE welcome_email (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    subject TEXT NOT NULL,
    preheader TEXT NOT NULL,
    body TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
