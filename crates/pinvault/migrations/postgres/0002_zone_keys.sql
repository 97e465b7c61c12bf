-- Zone PIN keys, loaded by the operator from clear components. The key itself
-- is wrapped by the master key (AES-256-GCM; id, algorithm and check value as
-- associated data) and never stored or shown in clear.

CREATE TABLE zone_keys (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('tdes', 'aes128', 'aes192', 'aes256')),
    kcv         TEXT    NOT NULL,
    wrapped     BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL
);
