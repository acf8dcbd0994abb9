-- Readers of the publication. `email_key` is the address folded to lower case, so the same
-- address in any case is one subscriber; `uid` is the random public identity that
-- unsubscribe links are derived from (the integer id is never shown to readers).
CREATE TABLE subscribers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid UUID NOT NULL UNIQUE,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL UNIQUE,
    name TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced')),
    consent_at TIMESTAMPTZ NOT NULL,
    consent_source TEXT NOT NULL,
    consent_ip TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX subscribers_status_id ON subscribers (status, id);
