-- One row per (issue, reader): made when the issue starts sending, for every subscriber
-- active at that moment; the unique pair makes enqueueing twice add nothing. `locked_until`
-- is a worker's lease; a row whose lease ran out is taken again, and `reclaimed` counts
-- those takeovers (a message in flight at a crash may have gone out: it is "in doubt").
CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reclaimed INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    locked_until TIMESTAMPTZ,
    last_error TEXT,
    smtp_reply TEXT,
    sent_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    UNIQUE (issue_id, subscriber_id)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_issue_status ON deliveries (issue_id, status);
CREATE INDEX deliveries_subscriber ON deliveries (subscriber_id);
