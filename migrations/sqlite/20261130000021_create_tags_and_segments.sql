-- Tags on subscribers, and the segment an issue goes to. `name_key` is the name folded to
-- lower case, so "Weekly" and "weekly" are one tag. A public tag is one readers may choose for
-- themselves on their manage page.
CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    public BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL
);

CREATE TABLE subscriber_tags (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, tag_id)
);

CREATE INDEX subscriber_tags_by_tag ON subscriber_tags (tag_id, subscriber_id);

-- An issue with no rows here goes to everyone; otherwise to the active readers with any of the
-- `any` tags (when there are such rows), all of the `all` tags and none of the `none` tags.
CREATE TABLE issue_segments (
    issue_id INTEGER NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    tag_id INTEGER NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    mode TEXT NOT NULL CHECK (mode IN ('any', 'all', 'none')),
    PRIMARY KEY (issue_id, tag_id)
);

-- Fixed when the send starts: how many readers it goes to, and the segment in words (kept
-- when a tag is deleted later).
ALTER TABLE issues ADD COLUMN audience BIGINT;
ALTER TABLE issues ADD COLUMN audience_label TEXT;

-- A reader's pause: the next this-many issues meant for them are skipped, then they resume.
ALTER TABLE subscribers ADD COLUMN skip_issues INTEGER NOT NULL DEFAULT 0;
-- What a reader said when leaving from their manage page.
ALTER TABLE subscribers ADD COLUMN unsubscribe_reason TEXT;
