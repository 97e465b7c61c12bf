//! The hosted widgets over HTTP (the browser suite, tests/browser, drives them in
//! Chromium): headers, what a page shows for a token it cannot use, the form and
//! appearance checks, the token-authenticated calls, and no token in the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness::{self, Server};

const PAN: &str = "4111111111111111";
const FORM: &str = "application/x-www-form-urlencoded";

fn page(s: &Server, method: &str, path: &str, form: Option<&str>) -> harness::Reply {
    s.call_with(method, path, None, form, FORM, &[])
}

fn html(r: &harness::Reply) -> &str {
    r.body.as_str().unwrap_or("")
}

#[test]
fn pages_headers_and_token_states() {
    let s = Server::start("widgets");
    let key = s.program(
        "test",
        &[
            r#"widget_allowed_origins=["https://app.example","http://localhost:3000"]"#,
            "allow_plaintext_pin=true",
        ],
    );
    let card = s.card(&key, PAN);
    let token = s.token(&key, &card, "set_pin");
    let mut seen = vec![token.clone()];

    let r = page(
        &s,
        "GET",
        &format!(
            "/widgets/pin-set?token={token}&parent_origin=https%3A%2F%2Fapp.example&color_accent=%23aa0055"
        ),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors https://app.example http://localhost:3000",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    let body = html(&r);
    assert!(body.contains(&format!(r#"data-token="{token}""#)));
    assert!(body.contains(&format!(r#"data-card-id="{card}""#)));
    assert!(body.contains(r#"data-parent-origin="https://app.example""#));
    assert!(body.contains("data-appearance-color-accent=\"#aa0055\""));
    assert!(body.contains(r#"name="pin""#) && body.contains(r#"name="pin_confirmation""#));
    assert!(!body.contains("data-initial-status"));

    // A host that is not allowed is not told anything.
    let r = page(
        &s,
        "POST",
        "/widgets/pin-set",
        Some(&format!(
            "controlId={token}&parent_origin=https%3A%2F%2Fevil.example"
        )),
    );
    assert_eq!(r.status, 200);
    assert!(!html(&r).contains("data-parent-origin"));

    // The reveal widget does not take a set token; an unknown token has no
    // program, so nobody may frame its page.
    for path in [
        format!("/widgets/pin-reveal?token={token}"),
        "/widgets/pin-set?token=pct_AAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "/widgets/pin-set?token=nonsense".to_owned(),
    ] {
        let r = page(&s, "GET", &path, None);
        assert_eq!(r.status, 403, "{path}");
        assert!(html(&r).contains(r#"data-initial-status="-10""#), "{path}");
        assert!(!html(&r).contains("data-token"), "{path}");
        assert!(
            r.header("content-security-policy")
                .unwrap()
                .ends_with("frame-ancestors 'none'")
        );
    }

    // Superseded, then used.
    let newer = s.token(&key, &card, "set_pin");
    seen.push(newer.clone());
    let r = page(&s, "GET", &format!("/widgets/pin-set?token={token}"), None);
    assert_eq!(r.status, 403);
    assert!(html(&r).contains(r#"data-initial-status="-11""#));
    // The program is known: its origins may still frame the page that says so.
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors https://app.example")
    );
    let set = s.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(&key),
        Some(&format!(r#"{{"control_token":"{newer}","pin":"8264"}}"#)),
    );
    assert_eq!(set.status, 204);
    let r = page(
        &s,
        "POST",
        "/widgets/pin-set",
        Some(&format!("controlId={newer}")),
    );
    assert_eq!(r.status, 403);
    assert!(html(&r).contains(r#"data-initial-status="-10""#));

    // Bad requests: no token, a bad appearance value, not a form.
    let fresh = s.token(&key, &card, "set_pin");
    seen.push(fresh.clone());
    assert_eq!(page(&s, "GET", "/widgets/pin-set", None).status, 400);
    assert_eq!(
        page(&s, "POST", "/widgets/pin-set", Some("x=1")).status,
        400
    );
    for bad in [
        "color_text=red",
        "radius=1em",
        "font_family=a%3Bb",
        "color_error=%23fff%3B",
    ] {
        let r = page(
            &s,
            "GET",
            &format!("/widgets/pin-set?token={fresh}&{bad}"),
            None,
        );
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.code(), "invalid_request", "{bad}");
    }
    let r = s.call_with(
        "POST",
        "/widgets/pin-set",
        None,
        Some(&format!(r#"{{"controlId":"{fresh}"}}"#)),
        "application/json",
        &[],
    );
    assert_eq!(r.status, 415);

    // The SDK and the page's own script and style.
    for (path, ct) in [
        ("/sdk/pinvault.js", "text/javascript; charset=utf-8"),
        (
            "/widgets/assets/widget.js",
            "text/javascript; charset=utf-8",
        ),
        ("/widgets/assets/widget.css", "text/css; charset=utf-8"),
    ] {
        let r = s.call("GET", path, None, None);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ct), "{path}");
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
    // /demo exists only with `serve --dev`.
    assert_eq!(s.call("GET", "/demo", None, None).status, 404);
    assert_eq!(
        s.call("POST", "/demo/api/cards", None, Some("{}")).status,
        404
    );

    let logs = s.logs();
    assert!(logs.contains("/widgets/pin-set"), "the log names the route");
    for t in &seen {
        assert!(!logs.contains(t.as_str()), "a control token is in the log");
    }
}

#[test]
fn widget_calls_take_the_token_as_credential() {
    let s = Server::start("widget-api");
    let key = s.program("test", &[]);
    let card = s.card(&key, PAN);
    let set = s.token(&key, &card, "set_pin");
    let reveal = s.token(&key, &card, "reveal_pin");

    // An encrypted PIN that does not decrypt: 422, and it uses an attempt.
    let r = s.call(
        "POST",
        "/widgets/api/pin-set",
        None,
        Some(&format!(
            r#"{{"control_token":"{set}","encrypted_pin":"a.b.c.d.e"}}"#
        )),
    );
    assert_eq!(
        (r.status, r.code()),
        (422, "decryption_failed"),
        "{}",
        r.body
    );
    // A token of the other type, an unknown one, none.
    for (path, body) in [
        (
            "/widgets/api/pin-set",
            format!(r#"{{"control_token":"{reveal}","encrypted_pin":"a.b.c.d.e"}}"#),
        ),
        (
            "/widgets/api/pin-set",
            r#"{"control_token":"pct_AAAAAAAAAAAAAAAAAAAAAA","encrypted_pin":"x"}"#.to_owned(),
        ),
        (
            "/widgets/api/pin-reveal",
            format!(
                r#"{{"control_token":"{set}","device_key":{{"kty":"EC","crv":"P-256","x":"","y":""}}}}"#
            ),
        ),
    ] {
        let r = s.call("POST", path, None, Some(&body));
        assert_eq!(
            (r.status, r.code()),
            (403, "token_invalid"),
            "{path} {body}"
        );
    }
    let r = s.call(
        "POST",
        "/widgets/api/pin-reveal",
        None,
        Some(&format!(r#"{{"control_token":"{reveal}"}}"#)),
    );
    assert_eq!(r.status, 422, "device_key is required: {}", r.body);
    // Not a public P-256 key: refused, and the token is not spent.
    let r = s.call(
        "POST",
        "/widgets/api/pin-reveal",
        None,
        Some(&format!(
            r#"{{"control_token":"{reveal}","device_key":{{"kty":"RSA","n":"AQAB","e":"AQAB"}}}}"#
        )),
    );
    assert_eq!((r.status, r.code()), (422, "invalid_request"), "{}", r.body);
    let r = page(
        &s,
        "GET",
        &format!("/widgets/pin-reveal?token={reveal}"),
        None,
    );
    assert_eq!(r.status, 200, "the reveal token is still usable");
    // Nothing was set.
    let events = s.get(&format!("/v1/events?card_id={card}"), &key);
    assert!(
        events.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "pin.changed")
    );
}
