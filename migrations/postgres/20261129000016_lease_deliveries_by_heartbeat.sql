-- Claims are held by a living worker instead of a fixed per-row lease. Each running delivery
-- worker has a row here and pushes its `expires_at` forward while it lives (a heartbeat); a
-- delivery it holds names it in `claimed_by`. A row held by a worker whose own row has expired
-- (it died, or lost the database) may be claimed again by anyone. `seen_seq` is the last
-- steering change (a start, pause, resume, cancel or retry) the worker has applied: pause and
-- cancel answer only once every live worker has seen them.
CREATE TABLE delivery_workers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    seen_seq BIGINT NOT NULL DEFAULT 0
);

-- One counter, bumped in the same transaction as every steering change.
CREATE TABLE delivery_steer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO delivery_steer (id, seq) VALUES (1, 0);

ALTER TABLE deliveries ADD COLUMN claimed_by BIGINT;
ALTER TABLE deliveries DROP COLUMN locked_until;

-- Claims read an issue's due rows in (next_attempt_at, id) order from a position each worker
-- remembers, so they never walk the rows already done (nor their dead index entries).
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (issue_id, next_attempt_at, id) WHERE status IN ('pending', 'retrying');

-- Every delivery is updated twice (claimed, then its outcome). Room left on each page lets the
-- claim, which changes no indexed column, be a heap-only update (no new index entries); dead
-- versions are then pruned page by page instead of waiting for a vacuum.
ALTER TABLE deliveries SET (fillfactor = 70);
