-- Transport keys (issue 5): RSA key pairs published for PIN encryption, their
-- private halves (PKCS#8) wrapped by the master key like the data keys, as the
-- data key kind `transport`: the kind's CHECK constraint is widened.

ALTER TABLE data_keys DROP CONSTRAINT data_keys_kind_check;
ALTER TABLE data_keys ADD CONSTRAINT data_keys_kind_check
    CHECK (kind IN ('pin', 'pan', 'lookup', 'transport'));
