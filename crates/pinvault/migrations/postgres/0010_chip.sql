-- Chip cards (v1.1): issuer master keys per program (AC, SMI, SMC: double-
-- length TDES, each wrapped by the master key like a zone key, never stored or
-- shown in clear), and on a card its chip data and what its chip still has to
-- be told by an issuer script (the rules are domain::chip).

CREATE TABLE issuer_key_sets (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    name        TEXT    NOT NULL,
    cvn         TEXT    NOT NULL CHECK (cvn IN ('visa_10', 'visa_18', 'visa_22', 'mastercard_16',
                                                'mastercard_17', 'mastercard_20', 'mastercard_21')),
    kcv_ac      TEXT    NOT NULL,
    kcv_smi     TEXT    NOT NULL,
    kcv_smc     TEXT    NOT NULL,
    wrapped_ac  BYTEA    NOT NULL,
    wrapped_smi BYTEA    NOT NULL,
    wrapped_smc BYTEA    NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX issuer_key_sets_program ON issuer_key_sets (program_id, seq);

ALTER TABLE cards ADD COLUMN chip_key_set_id TEXT REFERENCES issuer_key_sets (id);
ALTER TABLE cards ADD COLUMN chip_psn TEXT;
ALTER TABLE cards ADD COLUMN chip_offline_pin TEXT
    CHECK (chip_offline_pin IN ('in_sync', 'update_pending', 'blocked'));
ALTER TABLE cards ADD COLUMN chip_pending_change BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cards ADD COLUMN chip_pending_unblock BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cards ADD COLUMN chip_last_script_at BIGINT;
ALTER TABLE cards ADD COLUMN chip_last_script_result TEXT
    CHECK (chip_last_script_result IN ('success', 'failed'));
