//! What each sealed secret is bound to (AES-GCM associated data), so that a
//! sealed value can never be moved to another row and opened there.

/// A webhook endpoint's signing secret: its endpoint.
pub fn webhook_secret(endpoint_id: &str) -> Vec<u8> {
    format!("webhook-endpoint {endpoint_id}").into_bytes()
}

/// A stored idempotent response: its program and idempotency key.
pub fn idempotency_response(program_id: &str, key: &str) -> Vec<u8> {
    format!("idempotency {program_id} {key}").into_bytes()
}
