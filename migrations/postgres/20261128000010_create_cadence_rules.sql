-- The cadence's history: each rule is in force from its date until the next rule's date, so
-- a change never moves a slot before it. Slots are computed from these rows, never stored.
-- A new install publishes every other Thursday at 08:00 UTC; the editor changes it in the admin.
CREATE TABLE cadence_rules (
    effective_from DATE PRIMARY KEY,
    every_weeks INTEGER NOT NULL CHECK (every_weeks BETWEEN 1 AND 8),
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    local_time TEXT NOT NULL,
    zone TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

INSERT INTO cadence_rules (effective_from, every_weeks, weekday, local_time, zone, created_at)
VALUES ('2026-01-01', 2, 4, '08:00', 'UTC', '2026-01-01T00:00:00Z');

-- Slots the editor chose to leave empty.
CREATE TABLE skipped_slots (
    slot_at TIMESTAMPTZ PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

-- Reminders already sent for a slot with no issue, so each slot gets one.
CREATE TABLE slot_reminders (
    slot_at TIMESTAMPTZ PRIMARY KEY,
    sent_at TIMESTAMPTZ NOT NULL
);
