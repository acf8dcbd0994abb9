-- A CSV import runs as a background job, not inside the upload's request. The file is kept in
-- the database in chunks (so any instance can run or resume it), and each batch of rows is
-- committed together with the job's progress: after a crash the job resumes at the first row
-- not yet committed, and nothing is counted twice. `runner`/`lease_until` say which process
-- holds the job; a lapsed lease lets another take it over.
CREATE TABLE import_jobs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    file_name TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    consented BOOLEAN NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('loading', 'queued', 'running', 'done', 'failed')),
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    runner TEXT,
    lease_until TIMESTAMPTZ,
    resume_offset BIGINT NOT NULL DEFAULT 0,
    rows_read BIGINT NOT NULL DEFAULT 0,
    added_active BIGINT NOT NULL DEFAULT 0,
    added_pending BIGINT NOT NULL DEFAULT 0,
    added_inactive BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    opted_out BIGINT NOT NULL DEFAULT 0,
    invalid BIGINT NOT NULL DEFAULT 0,
    error TEXT
);

CREATE INDEX import_jobs_open ON import_jobs (id) WHERE state IN ('queued', 'running');

CREATE TABLE import_chunks (
    job_id BIGINT NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- The first thousand rows of a job that were not imported, with the reason.
CREATE TABLE import_problems (
    job_id BIGINT NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (job_id, line)
);
