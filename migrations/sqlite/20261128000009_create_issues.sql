-- Issues of the publication. `links` is the ordered "links roundup" as a JSON array of
-- {title, url, source, note}: always read and written whole with its issue. `uid` is the
-- public identity (feed entry ids, Message-IDs); `published_at` is set when sending starts,
-- which is when the issue appears in the archive.
CREATE TABLE issues (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid BLOB NOT NULL UNIQUE,
    slug TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    preheader TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    links_heading TEXT NOT NULL DEFAULT 'Links',
    links TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    published_at TEXT
);

CREATE INDEX issues_status_id ON issues (status, id);
CREATE INDEX issues_published ON issues (published_at) WHERE published_at IS NOT NULL;
