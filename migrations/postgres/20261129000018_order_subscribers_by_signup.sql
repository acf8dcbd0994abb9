-- The admin list and the API page newest signup first (imported readers keep their original
-- signup date), keyset-paginated on (created_at, id), optionally by status.
DROP INDEX subscribers_created_at;
CREATE INDEX subscribers_signed_up ON subscribers (created_at, id);
CREATE INDEX subscribers_status_signed_up ON subscribers (status, created_at, id);
-- The dashboard counts the readers who left after each issue.
CREATE INDEX subscribers_left ON subscribers (unsubscribed_at) WHERE status = 'unsubscribed';
