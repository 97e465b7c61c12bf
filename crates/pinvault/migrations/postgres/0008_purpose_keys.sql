-- One data key per purpose (v1.1): webhook signing secrets and the responses
-- idempotency records replay get kinds of their own (`webhook`,
-- `idempotency`) instead of sharing the `pan` key. Rows sealed before say
-- which kind sealed them ('pan'); the next `keys rotate` moves them.

ALTER TABLE data_keys DROP CONSTRAINT data_keys_kind_check;
ALTER TABLE data_keys ADD CONSTRAINT data_keys_kind_check
    CHECK (kind IN ('pin', 'pan', 'lookup', 'transport', 'webhook', 'idempotency'));
ALTER TABLE webhook_endpoints ADD COLUMN secret_key_kind TEXT NOT NULL DEFAULT 'pan'
    CHECK (secret_key_kind IN ('pan', 'webhook'));
ALTER TABLE idempotency_keys ADD COLUMN key_kind TEXT NOT NULL DEFAULT 'pan'
    CHECK (key_kind IN ('pan', 'idempotency'));
