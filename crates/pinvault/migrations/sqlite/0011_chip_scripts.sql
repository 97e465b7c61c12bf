-- The issuer script a chip card was sent and has not reported on yet: its
-- 9F18 identifier (hex) and its command. Hosts asking for a script meanwhile
-- get the same identifier for the same command (domain::chip).

ALTER TABLE cards ADD COLUMN chip_script_id TEXT;
ALTER TABLE cards ADD COLUMN chip_script_command TEXT
    CHECK (chip_script_command IN ('change_pin', 'unblock_pin'));
