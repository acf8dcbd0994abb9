-- Double opt-in links. Only the SHA-256 of a token is kept; the token itself lives in the
-- email alone.
CREATE TABLE confirmation_tokens (
    token_hash BLOB PRIMARY KEY,
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);

CREATE INDEX confirmation_tokens_subscriber ON confirmation_tokens (subscriber_id);
