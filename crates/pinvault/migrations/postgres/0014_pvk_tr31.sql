-- A PIN verification key that came as a TR-31 key block keeps what the block
-- said of it (version, usage V1/V2, mode of use, exportability, key version,
-- the KBPK), as JSON; NULL for a key loaded from components.

ALTER TABLE pin_verification_keys ADD COLUMN tr31 TEXT;
