-- The audit trail without a global queue (DESIGN.md "The audit trail at
-- scale"): a change's transaction appends its record here, ordered by the
-- sequence behind `id` and locking nothing but its own row; one sealer at a
-- time (the one holding `audit_head`'s row, taken with SKIP LOCKED by the
-- servers) moves the oldest records into `audit_log`, chained, and deletes
-- exactly those from here, in one transaction: a crash loses nothing and
-- seals nothing twice. `audit_log` stays append-only.
CREATE TABLE audit_queue (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    request_id  TEXT,
    source      TEXT,
    action      TEXT    NOT NULL,
    program_id  TEXT,
    card_id     TEXT,
    details     TEXT    NOT NULL
);
