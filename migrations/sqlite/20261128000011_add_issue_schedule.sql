-- When a scheduled issue goes out, and the slot it holds (NULL when scheduled at an exact
-- time outside the cadence). A slot holds at most one issue. `missed_at` marks an issue whose
-- time passed beyond the catch-up grace while no instance ran; it went back to draft.
ALTER TABLE issues ADD COLUMN scheduled_at TEXT;
ALTER TABLE issues ADD COLUMN slot_at TEXT;
ALTER TABLE issues ADD COLUMN missed_at TEXT;

CREATE UNIQUE INDEX issues_one_per_slot ON issues (slot_at) WHERE slot_at IS NOT NULL;
CREATE INDEX issues_due ON issues (scheduled_at) WHERE status = 'scheduled';
