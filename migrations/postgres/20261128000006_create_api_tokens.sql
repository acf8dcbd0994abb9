-- Bearer tokens for the JSON API. Only the SHA-256 of a token is kept; `prefix` (its first
-- characters) lets the editor recognise it in a list.
CREATE TABLE api_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_by BIGINT REFERENCES editors (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ
);
