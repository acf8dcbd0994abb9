-- Bearer tokens for the JSON API. Only the SHA-256 of a token is kept; `prefix` (its first
-- characters) lets the editor recognise it in a list.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_by INTEGER REFERENCES editors (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
