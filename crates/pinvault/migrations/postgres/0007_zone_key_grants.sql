-- v1.1: a zone key is usable only by the programs it is granted to, for one
-- usage: 'verify' (PIN blocks come in) or 'export' (PIN blocks go out).
-- Keys imported before v1.1 keep working for every program (all_programs)
-- until the operator grants one to a program; the first grant clears it.

ALTER TABLE zone_keys ADD COLUMN usage TEXT NOT NULL DEFAULT 'verify'
    CHECK (usage IN ('verify', 'export'));
ALTER TABLE zone_keys ADD COLUMN all_programs BOOLEAN NOT NULL DEFAULT TRUE;

CREATE TABLE zone_key_grants (
    zone_key_id TEXT    NOT NULL REFERENCES zone_keys (id),
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    granted_at  BIGINT  NOT NULL,
    PRIMARY KEY (zone_key_id, program_id)
);
CREATE INDEX zone_key_grants_program ON zone_key_grants (program_id);
