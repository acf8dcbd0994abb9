-- The links inbox: links the editor saves between issues. `url_key` is the address
-- normalized (scheme and host case, default port, fragment and click-tracking parameters
-- dropped), so one link is kept once; saving it again updates it.
CREATE TABLE saved_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    url TEXT NOT NULL,
    url_key TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    saved_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX saved_links_by_time ON saved_links (saved_at, id);
