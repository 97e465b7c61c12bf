//! Fuzzes the API's JSON request bodies: the first byte picks an operation
//! that reads one (card creation, control tokens, set, reveal, unblock,
//! verification, the sandbox, webhook endpoints, program settings), the rest
//! is its body, sent through the real router in process, over a real SQLite
//! store. Every answer must be below 500, in problem+json when an error, and
//! the same object with a key given twice must be refused. The
//! logic is `pinvault::fuzzing::ApiHarness`, which the unit tests also run on
//! the seeds and on fuzz/regressions/json_body.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pinvault::fuzzing::ApiHarness;

fuzz_target!(|data: &[u8]| {
    static HARNESS: OnceLock<ApiHarness> = OnceLock::new();
    HARNESS.get_or_init(ApiHarness::new).request(data);
});
