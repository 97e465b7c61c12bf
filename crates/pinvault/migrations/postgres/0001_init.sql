-- pinvault schema, PostgreSQL. The same tables as SQLite's 0001_init.sql.
-- Secrets are never stored in clear: API keys and control tokens as SHA-256,
-- PANs sealed (AES-256-GCM, card id as associated data) and found by HMAC,
-- PINs as ISO 9564 format 4 blocks under the PIN key. Times are Unix seconds.

CREATE TABLE data_keys (
    kind        TEXT    NOT NULL CHECK (kind IN ('pin', 'pan', 'lookup')),
    version     BIGINT  NOT NULL CHECK (version > 0),
    wrapped     BYTEA   NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (kind, version)
);

CREATE TABLE programs (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    mode        TEXT    NOT NULL CHECK (mode IN ('test', 'live')),
    settings    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    key_hash    BYTEA   NOT NULL UNIQUE,
    hint        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_keys_program ON api_keys (program_id, seq);

CREATE TABLE cards (
    seq                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    program_id          TEXT    NOT NULL REFERENCES programs (id),
    pan_hash            BYTEA   NOT NULL,
    lookup_key_version  BIGINT  NOT NULL,
    pan_sealed          BYTEA   NOT NULL,
    pan_key_version     BIGINT  NOT NULL,
    last4               TEXT    NOT NULL,
    expiry              TEXT,
    external_id         TEXT,
    status              TEXT    NOT NULL CHECK (status IN ('active', 'inactive', 'suspended')),
    inactive_by_block   BOOLEAN NOT NULL DEFAULT FALSE,
    pin_block           BYTEA   NOT NULL,
    pin_key_version     BIGINT  NOT NULL,
    pin_set_by          TEXT    NOT NULL CHECK (pin_set_by IN ('random', 'issuer', 'cardholder')),
    pin_updated_at      BIGINT  NOT NULL,
    fail_count          BIGINT  NOT NULL DEFAULT 0,
    last_failed_at      BIGINT,
    pin_blocked         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX cards_program ON cards (program_id, seq);
CREATE INDEX cards_external ON cards (program_id, external_id);
CREATE INDEX cards_pan_hash ON cards (pan_hash);

CREATE TABLE control_tokens (
    seq                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    token_hash          BYTEA   NOT NULL UNIQUE,
    card_id             TEXT    NOT NULL REFERENCES cards (id),
    type                TEXT    NOT NULL CHECK (type IN ('set_pin', 'reveal_pin')),
    cvm                 TEXT,
    created_at          BIGINT  NOT NULL,
    expires_at          BIGINT  NOT NULL,
    attempts_remaining  BIGINT  NOT NULL,
    used_at             BIGINT,
    superseded_at       BIGINT
);
CREATE INDEX control_tokens_card ON control_tokens (card_id, type);

CREATE TABLE idempotency_keys (
    program_id      TEXT    NOT NULL,
    key             TEXT    NOT NULL,
    request_hash    BYTEA   NOT NULL,
    status          BIGINT  NOT NULL,
    response_sealed BYTEA   NOT NULL,
    key_version     BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (program_id, key)
);
