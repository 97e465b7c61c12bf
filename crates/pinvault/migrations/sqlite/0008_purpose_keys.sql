-- One data key per purpose (v1.1): webhook signing secrets and the responses
-- idempotency records replay get kinds of their own (`webhook`,
-- `idempotency`) instead of sharing the `pan` key. Rows sealed before say
-- which kind sealed them ('pan'); the next `keys rotate` moves them. SQLite
-- cannot change a CHECK constraint in place: data_keys is rebuilt.

CREATE TABLE data_keys_new (
    kind        TEXT    NOT NULL
        CHECK (kind IN ('pin', 'pan', 'lookup', 'transport', 'webhook', 'idempotency')),
    version     INTEGER NOT NULL CHECK (version > 0),
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);
INSERT INTO data_keys_new (kind, version, wrapped, created_at)
    SELECT kind, version, wrapped, created_at FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;
ALTER TABLE webhook_endpoints ADD COLUMN secret_key_kind TEXT NOT NULL DEFAULT 'pan'
    CHECK (secret_key_kind IN ('pan', 'webhook'));
ALTER TABLE idempotency_keys ADD COLUMN key_kind TEXT NOT NULL DEFAULT 'pan'
    CHECK (key_kind IN ('pan', 'idempotency'));
