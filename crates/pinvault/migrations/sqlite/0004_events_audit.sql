-- Events (the outbox), webhook endpoints and deliveries, and the audit trail.
-- An event and its deliveries are written in the transaction that makes the
-- change they report; a worker then delivers them.

CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    card_id     TEXT,
    type        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- The event's JSON exactly as listed and delivered (never a PIN or a PAN).
    body        TEXT    NOT NULL
);
CREATE INDEX events_program ON events (program_id, seq);
CREATE INDEX events_card ON events (program_id, card_id, seq);

CREATE TABLE webhook_endpoints (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    program_id          TEXT    NOT NULL REFERENCES programs (id),
    url                 TEXT    NOT NULL,
    -- JSON array of event types.
    events              TEXT    NOT NULL,
    -- The signing secret, sealed (AES-256-GCM under the pan data key, the
    -- endpoint id as associated data): the server needs it to sign.
    secret_sealed       BLOB    NOT NULL,
    secret_key_version  INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    deleted_at          INTEGER
);
CREATE INDEX webhook_endpoints_program ON webhook_endpoints (program_id, seq);

CREATE TABLE webhook_deliveries (
    seq                 INTEGER PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    endpoint_id         TEXT    NOT NULL REFERENCES webhook_endpoints (id),
    event_id            TEXT    NOT NULL REFERENCES events (id),
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    next_attempt_at     INTEGER,
    -- A worker's claim: another worker takes the row only after it expires.
    lease_owner         TEXT,
    lease_until         INTEGER,
    last_attempt_at     INTEGER,
    last_response_code  INTEGER,
    last_error          TEXT,
    delivered_at        INTEGER,
    created_at          INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, seq);

-- Append-only; each record's hash covers the previous record's hash (see
-- src/audit.rs for the exact encoding). `seq` runs 1, 2, 3… without gaps.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    request_id  TEXT,
    source      TEXT,
    action      TEXT    NOT NULL,
    program_id  TEXT,
    card_id     TEXT,
    details     TEXT    NOT NULL,
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL
);
CREATE INDEX audit_log_card ON audit_log (card_id, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
