-- no-transaction
-- Bounces and complaints that arrive after the send (provider webhooks, a bounce mailbox), and
-- the addresses they suppress. A reader who complains gets the status `complained`: SQLite
-- cannot change a CHECK constraint in place, so the table is rebuilt (the documented
-- procedure, with foreign keys off so nothing cascades; the id sequence carries over, so the
-- ids of erased subscribers are never given out again).
PRAGMA foreign_keys = OFF;

BEGIN;

CREATE TABLE subscribers_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid BLOB NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    name TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    consent_at TEXT NOT NULL,
    consent_source TEXT NOT NULL,
    consent_ip TEXT,
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    unsubscribed_at TEXT,
    updated_at TEXT NOT NULL,
    hard_bounces INTEGER NOT NULL DEFAULT 0
);

INSERT INTO subscribers_new (id, uid, email, email_key, name, status, consent_at, consent_source,
    consent_ip, created_at, confirmed_at, unsubscribed_at, updated_at, hard_bounces)
SELECT id, uid, email, email_key, name, status, consent_at, consent_source,
    consent_ip, created_at, confirmed_at, unsubscribed_at, updated_at, hard_bounces
FROM subscribers;

DELETE FROM sqlite_sequence WHERE name = 'subscribers_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'subscribers_new', seq FROM sqlite_sequence WHERE name = 'subscribers';

DROP TABLE subscribers;
ALTER TABLE subscribers_new RENAME TO subscribers;

CREATE INDEX subscribers_status_id ON subscribers (status, id);
CREATE INDEX subscribers_signed_up ON subscribers (created_at, id);
CREATE INDEX subscribers_status_signed_up ON subscribers (status, created_at, id);
CREATE INDEX subscribers_left ON subscribers (unsubscribed_at) WHERE status = 'unsubscribed';

-- Each event once per provider, however often the provider delivers it.
CREATE TABLE mail_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bounce', 'soft_bounce', 'complaint')),
    email TEXT NOT NULL,
    subscriber_id INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    issue_id INTEGER REFERENCES issues (id) ON DELETE SET NULL,
    diagnostic TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    effect TEXT NOT NULL,
    UNIQUE (provider, event_id)
);

CREATE INDEX mail_events_received ON mail_events (received_at);
CREATE INDEX mail_events_subscriber ON mail_events (subscriber_id);
CREATE INDEX mail_events_issue ON mail_events (issue_id, kind);

-- The signature tokens a provider signed (Mailgun signs a timestamp and a token, not the
-- body): a token is accepted again only with the same event, so a captured signature cannot
-- carry another event.
CREATE TABLE webhook_tokens (
    provider TEXT NOT NULL,
    token TEXT NOT NULL,
    event_id TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (provider, token)
);

CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);

-- Rows an import did not add because their address is suppressed.
ALTER TABLE import_jobs ADD COLUMN suppressed BIGINT NOT NULL DEFAULT 0;

-- Addresses never mailed again, and refused at signup and import, until an editor lifts them.
CREATE TABLE suppressions (
    email_key TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint')),
    provider TEXT NOT NULL,
    diagnostic TEXT NOT NULL,
    created_at TEXT NOT NULL
);

COMMIT;

PRAGMA foreign_keys = ON;
