-- Staged mode (`pin_set_mode` `staged`): a PIN set through a control token
-- waits here until the program commits it. Like the card's PIN it is an ISO
-- 9564 format 4 block under the PIN key (never clear); it expires with the
-- token that set it. All four columns are NULL when nothing is staged.
ALTER TABLE cards ADD COLUMN staged_pin_block BLOB;
ALTER TABLE cards ADD COLUMN staged_pin_key_version INTEGER;
ALTER TABLE cards ADD COLUMN staged_expires_at INTEGER;
ALTER TABLE cards ADD COLUMN staged_token_id TEXT;
-- For the sweep that removes expired staged PINs.
CREATE INDEX cards_staged_expiry ON cards (staged_expires_at) WHERE staged_expires_at IS NOT NULL;
