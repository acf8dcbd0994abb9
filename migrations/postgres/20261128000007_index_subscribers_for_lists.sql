-- The admin list and the API page newest first, optionally by status: keyset pagination on
-- id uses the primary key, and (status, id) serves the status filter.
CREATE INDEX subscribers_created_at ON subscribers (created_at);
