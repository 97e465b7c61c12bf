-- Events (the outbox), webhook endpoints and deliveries, and the audit trail:
-- the same tables as SQLite's 0003_events_audit.sql. Times are Unix seconds.

CREATE TABLE events (
    seq         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT    NOT NULL UNIQUE,
    program_id  TEXT    NOT NULL REFERENCES programs (id),
    card_id     TEXT,
    type        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    body        TEXT    NOT NULL
);
CREATE INDEX events_program ON events (program_id, seq);
CREATE INDEX events_card ON events (program_id, card_id, seq);

CREATE TABLE webhook_endpoints (
    seq                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    program_id          TEXT    NOT NULL REFERENCES programs (id),
    url                 TEXT    NOT NULL,
    events              TEXT    NOT NULL,
    secret_sealed       BYTEA   NOT NULL,
    secret_key_version  BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    deleted_at          BIGINT
);
CREATE INDEX webhook_endpoints_program ON webhook_endpoints (program_id, seq);

CREATE TABLE webhook_deliveries (
    seq                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                  TEXT    NOT NULL UNIQUE,
    endpoint_id         TEXT    NOT NULL REFERENCES webhook_endpoints (id),
    event_id            TEXT    NOT NULL REFERENCES events (id),
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts            BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at     BIGINT,
    lease_owner         TEXT,
    lease_until         BIGINT,
    last_attempt_at     BIGINT,
    last_response_code  BIGINT,
    last_error          TEXT,
    delivered_at        BIGINT,
    created_at          BIGINT  NOT NULL
);
-- The claim scans only pending rows.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, seq);

-- Append-only hash chain (src/audit.rs). Appends are serialized by a row lock
-- on the single `audit_head` row, taken first in the appending transaction.
CREATE TABLE audit_log (
    seq         BIGINT  PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    request_id  TEXT,
    source      TEXT,
    action      TEXT    NOT NULL,
    program_id  TEXT,
    card_id     TEXT,
    details     TEXT    NOT NULL,
    prev_hash   BYTEA   NOT NULL,
    hash        BYTEA   NOT NULL
);
CREATE INDEX audit_log_card ON audit_log (card_id, seq);

CREATE TABLE audit_head (
    id    BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    seq   BIGINT  NOT NULL,
    hash  BYTEA   NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
