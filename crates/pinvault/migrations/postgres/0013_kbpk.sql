-- Key exchange (v1.1, TR-31 / X9.143 key blocks): the key block protection
-- keys (KBPKs) keys arrive under, loaded by the operator from clear components
-- (operator-level, no program's; wrapped by the master key like a zone key,
-- never stored or shown in clear); and, on a zone key and on each key of an
-- issuer key set, the key block it arrived in: a JSON object (the KBPK's id,
-- the block's version, key usage, mode of use, exportability and key version
-- number), NULL for a key loaded from components.

CREATE TABLE key_block_protection_keys (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('tdes', 'aes128', 'aes192', 'aes256')),
    kcv         TEXT    NOT NULL,
    wrapped     BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL
);

ALTER TABLE zone_keys ADD COLUMN tr31 TEXT;
ALTER TABLE issuer_key_sets ADD COLUMN tr31_ac TEXT;
ALTER TABLE issuer_key_sets ADD COLUMN tr31_smi TEXT;
ALTER TABLE issuer_key_sets ADD COLUMN tr31_smc TEXT;
