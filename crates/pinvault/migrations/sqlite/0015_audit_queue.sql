-- The audit trail's records before they are sealed into the chain (see
-- migrations/postgres/0015_audit_queue.sql): appended by each change's
-- transaction in `id` order, moved into `audit_log` by the sealer, chained.
CREATE TABLE audit_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    request_id  TEXT,
    source      TEXT,
    action      TEXT    NOT NULL,
    program_id  TEXT,
    card_id     TEXT,
    details     TEXT    NOT NULL
);
