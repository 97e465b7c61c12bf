-- pinvault schema, SQLite. Secrets are never stored in clear: API keys and
-- control tokens as SHA-256, PANs sealed (AES-256-GCM, card id as associated
-- data) and found by HMAC, PINs as ISO 9564 format 4 blocks under the PIN key.

CREATE TABLE data_keys (
    kind        TEXT    NOT NULL CHECK (kind IN ('pin', 'pan', 'lookup')),
    version     INTEGER NOT NULL CHECK (version > 0),
    wrapped     BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, version)
);

CREATE TABLE programs (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    mode        TEXT    NOT NULL CHECK (mode IN ('test', 'live')),
    settings    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    key_hash    BLOB    NOT NULL UNIQUE,
    hint        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE cards (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    program_id          TEXT    NOT NULL REFERENCES programs (id),
    pan_hash            BLOB    NOT NULL,
    lookup_key_version  INTEGER NOT NULL,
    pan_sealed          BLOB    NOT NULL,
    pan_key_version     INTEGER NOT NULL,
    last4               TEXT    NOT NULL,
    expiry              TEXT,
    external_id         TEXT,
    status              TEXT    NOT NULL CHECK (status IN ('active', 'inactive', 'suspended')),
    inactive_by_block   INTEGER NOT NULL DEFAULT 0,
    pin_block           BLOB    NOT NULL,
    pin_key_version     INTEGER NOT NULL,
    pin_set_by          TEXT    NOT NULL CHECK (pin_set_by IN ('random', 'issuer', 'cardholder')),
    pin_updated_at      INTEGER NOT NULL,
    fail_count          INTEGER NOT NULL DEFAULT 0,
    last_failed_at      INTEGER,
    pin_blocked         INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX cards_program ON cards (program_id, seq);
CREATE INDEX cards_external ON cards (program_id, external_id);
CREATE INDEX cards_pan_hash ON cards (pan_hash);

CREATE TABLE control_tokens (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    token_hash          BLOB    NOT NULL UNIQUE,
    card_id             TEXT    NOT NULL REFERENCES cards (id),
    type                TEXT    NOT NULL CHECK (type IN ('set_pin', 'reveal_pin')),
    cvm                 TEXT,
    created_at          INTEGER NOT NULL,
    expires_at          INTEGER NOT NULL,
    attempts_remaining  INTEGER NOT NULL,
    used_at             INTEGER,
    superseded_at       INTEGER
);
CREATE INDEX control_tokens_card ON control_tokens (card_id, type);

CREATE TABLE idempotency_keys (
    program_id      TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    request_hash    BLOB    NOT NULL,
    status          INTEGER NOT NULL,
    response_sealed BLOB    NOT NULL,
    key_version     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (program_id, key)
);
