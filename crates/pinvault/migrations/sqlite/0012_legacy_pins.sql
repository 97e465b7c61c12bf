-- Portfolio migration (v1.1): PIN verification keys per program (a Visa PVK
-- or an IBM 3624 PIN verification key, TDES, wrapped by the master key like a
-- zone key, never stored or shown in clear), and on a card how its PIN is
-- verified: 'stored' (the PIN enciphered in pin_block, as always), or legacy
-- data until a verification captures the PIN: 'visa_pvv' (pin_block holds the
-- PVV, enciphered the same way, with legacy_pvki) or 'ibm_3624' (pin_block
-- holds the offset).

CREATE TABLE pin_verification_keys (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL,
    method      TEXT    NOT NULL CHECK (method IN ('visa_pvv', 'ibm_3624')),
    kcv         TEXT    NOT NULL,
    wrapped     BLOB    NOT NULL,
    -- IBM 3624: the decimalization table, validation data window, pad
    -- character and PIN check length, as JSON; NULL for a Visa PVK.
    params      TEXT,
    created_at  INTEGER  NOT NULL
);
CREATE INDEX pin_verification_keys_program ON pin_verification_keys (program_id, seq);

ALTER TABLE cards ADD COLUMN pin_verification TEXT NOT NULL DEFAULT 'stored'
    CHECK (pin_verification IN ('stored', 'visa_pvv', 'ibm_3624'));
ALTER TABLE cards ADD COLUMN legacy_pvk_id TEXT REFERENCES pin_verification_keys (id);
ALTER TABLE cards ADD COLUMN legacy_pvki INTEGER;
