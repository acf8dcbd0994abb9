-- Drafts the scheduler made by itself (`draft_ahead`), one per cadence slot: the row is
-- claimed in the transaction that makes the draft, so however many instances tick, a slot
-- gets one, and deleting the draft does not bring it back.
CREATE TABLE slot_drafts (
    slot_at TIMESTAMPTZ PRIMARY KEY,
    issue_id BIGINT REFERENCES issues (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL
);
