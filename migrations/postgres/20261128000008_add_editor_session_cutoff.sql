-- Sessions issued before this instant are void: set on sign-out and on a password change, so a
-- copied cookie stops working with them.
ALTER TABLE editors ADD COLUMN sessions_valid_after TIMESTAMPTZ;
