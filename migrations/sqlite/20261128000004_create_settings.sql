-- Values the instances of one installation must share, generated on first run
-- (for example the key unsubscribe links are signed with).
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at TEXT NOT NULL
);
