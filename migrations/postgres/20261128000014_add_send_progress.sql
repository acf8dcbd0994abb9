-- A send's progress and outcome. Recipients are enqueued in keyset batches; `enqueued_through`
-- is the last subscriber id done, so a crash mid-enqueue resumes there. `paused_at` holds
-- workers off the issue. `summary` is the final report (JSON).
ALTER TABLE issues ADD COLUMN enqueued_through BIGINT NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN enqueue_done BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE issues ADD COLUMN paused_at TIMESTAMPTZ;
ALTER TABLE issues ADD COLUMN finished_at TIMESTAMPTZ;
ALTER TABLE issues ADD COLUMN summary TEXT;

-- Hard bounces so far; past the configured threshold the subscriber is marked bounced.
ALTER TABLE subscribers ADD COLUMN hard_bounces INTEGER NOT NULL DEFAULT 0;
