//! Fuzzes inbound PIN encryption: compact JWE parsing and decryption against a
//! real RSA transport key, the plaintext rules, and device keys (JWK). Also
//! makes valid JWEs of the input and checks they decrypt to it, and that one
//! altered character makes them fail. The logic is `pinvault::fuzzing::jwe`,
//! which the unit tests also run on the seeds and on fuzz/regressions/jwe.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pinvault::fuzzing::jwe(data);
});
