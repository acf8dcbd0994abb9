-- Bounces and complaints that arrive after the send (provider webhooks, a bounce mailbox), and
-- the addresses they suppress. A reader who complains gets the status `complained`.
ALTER TABLE subscribers DROP CONSTRAINT subscribers_status_check;
ALTER TABLE subscribers ADD CONSTRAINT subscribers_status_check
    CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained'));

-- Each event once per provider, however often the provider delivers it.
CREATE TABLE mail_events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('bounce', 'soft_bounce', 'complaint')),
    email TEXT NOT NULL,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE SET NULL,
    issue_id BIGINT REFERENCES issues (id) ON DELETE SET NULL,
    diagnostic TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
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
    seen_at TIMESTAMPTZ NOT NULL,
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
    created_at TIMESTAMPTZ NOT NULL
);
