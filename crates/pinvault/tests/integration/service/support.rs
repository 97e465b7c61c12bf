//! What the service tests share: constants, helpers and fixtures.

use crate::harness::{self};

pub(super) const PAN: &str = "4111111111111111";

pub(super) const PLAIN: &[&str] = &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"];

pub(super) fn problem(r: &harness::Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(
            !r.body[field].is_null(),
            "problem without {field}: {}",
            r.body
        );
    }
}
