-- PIN changes at an ATM (v1.1), kept 24 hours so that one can be reversed
-- when the ATM never delivered the answer: the PIN before the change (as the
-- card held it: an enciphered block under the pin data key, bound to the PAN)
-- and the block the change stored, which must still be the card's for a
-- reversal to apply. Never a PIN in clear.

CREATE TABLE pin_changes (
    seq                      INTEGER PRIMARY KEY,
    id                       TEXT    NOT NULL UNIQUE,
    program_id               TEXT    NOT NULL REFERENCES programs (id),
    card_id                  TEXT    NOT NULL REFERENCES cards (id),
    previous_pin_block       BLOB    NOT NULL,
    previous_pin_key_version INTEGER  NOT NULL,
    previous_pin_set_by      TEXT    NOT NULL
        CHECK (previous_pin_set_by IN ('random', 'issuer', 'cardholder')),
    new_pin_block            BLOB    NOT NULL,
    created_at               INTEGER  NOT NULL,
    reversed_at              INTEGER
);
CREATE INDEX pin_changes_created ON pin_changes (created_at);
