-- Transport keys (issue 5): RSA key pairs published for PIN encryption, their
-- private halves (PKCS#8) wrapped by the master key like the data keys, as the
-- data key kind `transport`. SQLite cannot change a CHECK constraint in place:
-- the table is rebuilt with the wider one.

CREATE TABLE data_keys_new (
    kind        TEXT    NOT NULL CHECK (kind IN ('pin', 'pan', 'lookup', 'transport')),
    version     INTEGER NOT NULL CHECK (version > 0),
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);
INSERT INTO data_keys_new (kind, version, wrapped, created_at)
    SELECT kind, version, wrapped, created_at FROM data_keys;
DROP TABLE data_keys;
ALTER TABLE data_keys_new RENAME TO data_keys;
