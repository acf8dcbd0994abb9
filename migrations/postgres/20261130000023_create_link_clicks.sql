-- Clicks on tracked links (`track_clicks`): one row per request to `/l/{token}`. The reader is
-- known only with `track_readers`; the address is the link's own, byte for byte.
CREATE TABLE link_clicks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    subscriber_id BIGINT REFERENCES subscribers (id) ON DELETE SET NULL,
    clicked_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX link_clicks_by_issue ON link_clicks (issue_id, url);
