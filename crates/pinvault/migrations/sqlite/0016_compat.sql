-- The seed-compatible routes (COMPAT.md): a set_pin token that always
-- stages its PIN (Spidr's pinChangeToken, whatever the program's
-- pin_set_mode); a webhook endpoint's format (`pinvault`, or `spidr`: Spidr's
-- event names); the name a delivery goes out under where it is not the
-- event's own type (one v1 event may be two Spidr webhooks).
ALTER TABLE control_tokens ADD COLUMN always_staged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'pinvault';
ALTER TABLE webhook_deliveries ADD COLUMN delivered_as TEXT;
