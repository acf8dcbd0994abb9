-- Double opt-in links. Only the SHA-256 of a token is kept; the token itself lives in the
-- email alone.
CREATE TABLE confirmation_tokens (
    token_hash BYTEA PRIMARY KEY,
    subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);

CREATE INDEX confirmation_tokens_subscriber ON confirmation_tokens (subscriber_id);
