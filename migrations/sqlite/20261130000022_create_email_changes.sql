-- A reader's request, from their manage page, to receive the publication at another address.
-- The new address confirms by a link mailed to it before it replaces the old one; only the
-- link's SHA-256 is stored, made when the email is sent.
CREATE TABLE email_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    new_email TEXT NOT NULL,
    token_hash BLOB UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

CREATE INDEX email_changes_subscriber ON email_changes (subscriber_id);
