//! What the fuzz targets (fuzz/fuzz_targets) run, here so that the unit tests
//! run the same code on the seed corpus and on every input a fuzzer ever
//! crashed on (fuzz/regressions): each such input stays a regression test.
//!
//! - [`jwe`]: compact JWE parsing and decryption against a real transport key,
//!   the plaintext rules, and device keys (JWK) as the reveal reads them. A
//!   valid JWE made from the input must decrypt to the input; one with any
//!   byte changed must not.
//! - [`ApiHarness`]: JSON request bodies through the real router in process
//!   (extractors, request structs, the domain validation behind them, a real
//!   SQLite store), the hosted widgets' calls included: any body on any operation that reads one gets an answer
//!   below 500, in problem+json when it is an error.
#![doc(hidden)]
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPublicEncryptingKey, PublicEncryptingKey};
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tower_service::Service;

use crate::jose;
use crate::keys::transport::{TransportBits, TransportKey};

/// A fixed RSA-2048 key (PKCS#8 DER) made for the fuzzers and nothing else,
/// so that the seed corpus can hold JWEs (made by jwcrypto) that decrypt.
/// Its kid is `_R4c5mRe_GyoRxHpqXSsWHvVVGCrKHgnUsFCAKOphGE`.
const FUZZ_KEY: &[u8] = include_bytes!("fuzz_transport_key.der");

fn transport_key() -> &'static Arc<TransportKey> {
    static KEY: OnceLock<Arc<TransportKey>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(TransportKey::from_pkcs8(1, 0, FUZZ_KEY).expect("transport key")))
}

/// A valid compact JWE (RSA-OAEP-256, A256GCM) of `plaintext` to `key`.
fn encrypt(key: &TransportKey, plaintext: &[u8], fill: u8) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"{}"}}"#,
        key.kid
    ));
    let cek = [fill; 32];
    let iv = [fill.wrapping_add(1); 12];
    let public = PublicEncryptingKey::from_der(&key.spki).expect("public key");
    let oaep = OaepPublicEncryptingKey::new(public).expect("OAEP key");
    let mut wrapped = vec![0u8; oaep.ciphertext_size()];
    let wrapped = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, &cek, &mut wrapped, None)
        .expect("RSA-OAEP encryption")
        .to_vec();
    let (body, tag) = jose::seal_a256gcm(&cek, iv, header.as_bytes(), plaintext).expect("AES-GCM");
    [
        header,
        URL_SAFE_NO_PAD.encode(wrapped),
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&*body),
        URL_SAFE_NO_PAD.encode(tag.as_ref()),
    ]
    .join(".")
}

/// The JWE target. Input: `[mode][rest]`; mode 0 to 127: `rest` is a compact
/// JWE (text) to parse and decrypt; 128 to 255: `rest` is a plaintext, made
/// into a valid JWE, checked to decrypt, then changed at one place and checked
/// not to. Either way the plaintext rules and the JWK reader see `rest` too.
pub fn jwe(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = transport_key();
    let keys = std::slice::from_ref(key);
    let _ = jose::pin_from_plaintext(rest, Some("card_fuzz"), 1_800_000_000, 300);
    if let Ok(jwk) = serde_json::from_slice::<serde_json::Value>(rest) {
        let _ = jose::DeviceKey::from_jwk(&jwk);
    }
    if mode < 128 {
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(plain) = jose::decrypt_with(text, keys) {
                // Only a JWE made with the key's public half decrypts.
                let _ = jose::pin_from_plaintext(&plain, None, 1_800_000_000, 300);
            }
        }
        return;
    }
    if rest.len() > 1024 {
        return;
    }
    let jwe = encrypt(key, rest, mode);
    if rest.is_empty() {
        // An empty ciphertext is refused by design: no PIN is empty.
        assert!(jose::decrypt_with(&jwe, keys).is_err());
        return;
    }
    let plain = jose::decrypt_with(&jwe, keys).expect("a valid JWE decrypts");
    assert_eq!(plain.as_slice(), rest, "decrypts to what was encrypted");
    // One character changed, wherever the input's first bytes say.
    let at = usize::from(rest.first().copied().unwrap_or(0))
        * usize::from(rest.get(1).copied().unwrap_or(1))
        % jwe.len();
    let mut bytes = jwe.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    if bytes[at] == b'.' {
        return;
    }
    let changed = String::from_utf8(bytes).expect("ASCII");
    assert!(
        jose::decrypt_with(&changed, keys).is_err(),
        "an altered JWE must not decrypt (changed at {at})"
    );
}

/// The operations that read a JSON body, with the path the harness sends
/// them to (`{card}` is the harness's card).
pub const BODY_OPERATIONS: [(&str, &str); 30] = [
    ("POST", "/v1/cards"),
    ("PATCH", "/v1/cards/{card}"),
    ("POST", "/v1/cards/{card}/control-tokens"),
    ("PUT", "/v1/cards/{card}/pin"),
    ("POST", "/v1/cards/{card}/pin/reveal"),
    ("POST", "/v1/cards/{card}/pin/unblock"),
    ("POST", "/v1/cards/{card}/pin/verify"),
    ("POST", "/v1/test/cards/{card}/pin/verify"),
    ("POST", "/v1/webhook-endpoints"),
    ("PATCH", "/v1/program"),
    // The same again for a live program's card (other rules apply).
    ("PUT", "/v1/cards/{live}/pin"),
    ("POST", "/v1/cards/{live}/pin/reveal"),
    ("POST", "/v1/cards/{live}/pin/verify"),
    ("POST", "/v1/cards/{card}/pin/commit"),
    // The hosted widgets' calls (the token is the credential).
    ("POST", "/widgets/api/pin-set"),
    ("POST", "/widgets/api/pin-reveal"),
    // v1.1: the authorization host's calls, chip scripts, PIN export.
    ("POST", "/v1/card-lookups"),
    ("POST", "/v1/cards/{card}/pin/change"),
    ("POST", "/v1/cards/{card}/chip/scripts"),
    ("POST", "/v1/cards/{card}/chip/unblock-offline-pin"),
    ("POST", "/v1/cards/{card}/pin/export"),
    ("POST", "/v1/cards/{live}/pin/change"),
    // The seed-compatible routes (COMPAT.md) that read a JSON body.
    ("POST", "/compat/marqeta/v3/pins/controltoken"),
    ("PUT", "/compat/marqeta/v3/pins"),
    ("POST", "/compat/marqeta/v3/pins/reveal"),
    ("POST", "/compat/thredd/cards/{card}/pin"),
    ("POST", "/compat/thredd/cards/{card}/pin/unblock"),
    ("POST", "/compat/spidr/v1/card/{card}/commitPinChange"),
    ("POST", "/compat/spidr/v1/card/{card}/resetPinFailCount"),
    ("POST", "/compat/enfuce/v1/plastics/{card}/pin-control"),
];

/// A server in process: the real router over a SQLite store in a temporary
/// directory, a test-mode and a live program (plaintext PINs allowed in the
/// test one), a card of each, and their API keys.
pub struct ApiHarness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    test_key: String,
    live_key: String,
    card: String,
    live_card: String,
    dir: PathBuf,
}

impl std::fmt::Debug for ApiHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiHarness")
    }
}

impl Drop for ApiHarness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ApiHarness {
    pub fn new() -> ApiHarness {
        use crate::cli::serve::{DataArgs, create_program, open_app_with};
        use crate::domain::program::{Mode, Settings};
        let dir = std::env::temp_dir().join(format!(
            "pinvault-fuzz-{}-{}",
            std::process::id(),
            crate::domain::ids::new_id("")
        ));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let data = DataArgs {
            data_dir: dir.clone(),
            database_url: None,
            db_pool_size: 4,
            db_timeout_ms: 5000,
            db_statement_cache: true,
        };
        let settings = crate::app::ServerSettings {
            public_url: "http://fuzz.invalid".into(),
            transport: crate::app::TransportSettings {
                bits: TransportBits::Rsa2048,
                grace_s: 3600,
            },
            // No limits: the fuzzer sends far more than any limit allows.
            limits: crate::limits::LimitSettings::off(),
            ..Default::default()
        };
        let (app, test_key, live_key) = runtime.block_on(async {
            let app = open_app_with(&data, settings).await.expect("open the app");
            app.bootstrap_transport_key().await.expect("transport key");
            let plain = Settings {
                allow_plaintext_pin: true,
                allow_plaintext_reveal: true,
                ..Settings::default()
            };
            let (_, test_key) = create_program(&app, "fuzz", Mode::Test, plain, "program.created")
                .await
                .expect("program");
            let (_, live_key) = create_program(
                &app,
                "fuzz-live",
                Mode::Live,
                Settings::default(),
                "program.created",
            )
            .await
            .expect("program");
            (
                app,
                test_key.expose().to_owned(),
                live_key.expose().to_owned(),
            )
        });
        let router = crate::api::router(Arc::new(app), None);
        let mut h = ApiHarness {
            runtime,
            router,
            test_key,
            live_key,
            card: String::new(),
            live_card: String::new(),
            dir,
        };
        h.card = h.make_card(false);
        h.live_card = h.make_card(true);
        h
    }

    fn make_card(&self, live: bool) -> String {
        let (status, body) = self.send(
            "POST",
            "/v1/cards",
            live,
            br#"{"pan":"4111111111111111"}"#.to_vec(),
        );
        assert_eq!(status, 201, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        v["id"].as_str().expect("card id").to_owned()
    }

    fn send(&self, method: &str, path: &str, live: bool, body: Vec<u8>) -> (u16, String) {
        let key = if live { &self.live_key } else { &self.test_key };
        let req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let mut router = self.router.clone();
        self.runtime.block_on(async move {
            let res = router.call(req).await.unwrap_or_else(|e| match e {});
            let status = res.status().as_u16();
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .expect("response body");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if status >= 400 {
                let v: serde_json::Value = serde_json::from_str(&text).expect("error JSON");
                if path.starts_with("/compat/marqeta/") {
                    // Marqeta's shape, with the stable code inside.
                    assert_eq!(ct, "application/json", "{status}: {text}");
                    assert!(v["error_code"].is_string(), "{text}");
                } else {
                    assert_eq!(ct, "application/problem+json", "{status}: {text}");
                    assert!(v["code"].is_string(), "{text}");
                }
            }
            (status, text)
        })
    }

    /// The request-body target. Input: `[operation][body…]`.
    pub fn request(&self, data: &[u8]) {
        let Some((&op, body)) = data.split_first() else {
            return;
        };
        let (method, template) = BODY_OPERATIONS[usize::from(op) % BODY_OPERATIONS.len()];
        let live = template.contains("{live}");
        let path = template
            .replace("{card}", &self.card)
            .replace("{live}", &self.live_card);
        // The same object with its first key given twice is refused, before
        // its shape is looked at (400 `invalid_request`, not 422), or earlier
        // (no API key, a limit, too large), and never served.
        if let Some(twice) = with_a_key_twice(body) {
            let (status, text) = self.send(method, &path, live, twice);
            let refused = match status {
                400 => text.contains("twice in one object"),
                401 | 403 | 404 | 413 | 429 => true,
                _ => false,
            };
            assert!(
                refused,
                "{method} {template} with a key twice: {status} {text}"
            );
        }
        let (status, text) = self.send(method, &path, live, body.to_vec());
        assert!(status < 500, "{method} {template}: {status} {text}");
    }
}

/// A JSON object with at least one key, written again with its first key
/// (and value) once more at the end.
pub fn with_a_key_twice(body: &[u8]) -> Option<Vec<u8>> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let (key, value) = map.iter().next()?;
    let text = serde_json::to_string(&map).ok()?;
    let again = format!(",{}:{}}}", serde_json::to_string(key).ok()?, value);
    Some(format!("{}{again}", &text[..text.len() - 1]).into_bytes())
}

impl Default for ApiHarness {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under fuzz/seeds/<target> and fuzz/regressions/<target>.
    fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut out = Vec::new();
        for dir in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            for e in entries.flatten() {
                out.push((e.path(), std::fs::read(e.path()).unwrap()));
            }
        }
        out
    }

    #[test]
    fn jwe_seeds_and_regressions() {
        let all = inputs("jwe");
        assert!(all.len() >= 5, "the jwe seeds are missing");
        let mut decrypted = 0;
        for (path, data) in all {
            jwe(&data);
            // The seeds jwcrypto made decrypt (an independent implementation).
            if path.to_string_lossy().contains("jwcrypto") {
                let text = std::str::from_utf8(&data[1..]).unwrap();
                jose::decrypt_with(text, std::slice::from_ref(transport_key()))
                    .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                decrypted += 1;
            }
        }
        assert!(decrypted >= 16, "{decrypted}");
        // Made-up inputs of each mode.
        jwe(b"\x80{\"pin\":\"1234\"}");
        jwe(b"\xff");
        jwe(b"\x00a.b.c.d.e");
    }

    #[test]
    fn json_body_seeds_and_regressions() {
        let all = inputs("json_body");
        assert!(
            all.len() >= BODY_OPERATIONS.len(),
            "the json_body seeds are missing"
        );
        let h = ApiHarness::new();
        let mut twice = 0;
        for (_, data) in all {
            twice += usize::from(with_a_key_twice(&data[1..]).is_some());
            h.request(&data);
        }
        assert!(twice >= 20, "only {twice} seeds are JSON objects");
    }

    #[test]
    fn a_key_twice_is_written_once_more_at_the_end() {
        let twice = with_a_key_twice(br#"{"pan": "4111111111111111", "x": [1]}"#).unwrap();
        assert_eq!(
            String::from_utf8(twice).unwrap(),
            r#"{"pan":"4111111111111111","x":[1],"pan":"4111111111111111"}"#
        );
        assert!(with_a_key_twice(b"{}").is_none());
        assert!(with_a_key_twice(b"[1]").is_none());
    }
}
