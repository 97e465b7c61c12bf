//! Requests to a server and its replies, and the common calls (a card, a
//! control token, a PIN set, reveal and sandbox check).

use serde_json::Value;

use super::canaries::canaries_in;
use super::server::Server;

pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The error's stable code: problem+json's `code`, or inside the shapes
    /// of the seed-compatible routes (Marqeta's `error_code`, Stripe's
    /// `error.code`).
    pub fn code(&self) -> &str {
        [
            &self.body["code"],
            &self.body["error_code"],
            &self.body["error"]["code"],
        ]
        .into_iter()
        .find_map(|v| v.as_str())
        .unwrap_or("")
    }

    /// The error's text, in any of the shapes [`Self::code`] reads.
    pub fn detail(&self) -> &str {
        [
            &self.body["detail"],
            &self.body["error_message"],
            &self.body["error"]["message"],
        ]
        .into_iter()
        .find_map(|v| v.as_str())
        .unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// A request with a JSON body (or none) and an API key (or none).
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, key, body, "application/json", &[])
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_call_with(method, path, key, body, content_type, headers)
            .expect("HTTP request")
    }

    /// As [`Server::call`], with a failed connection as an error rather than a panic.
    pub fn try_call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Result<Reply, ureq::Error> {
        self.try_call_with(method, path, key, body, "application/json", &[])
    }

    pub fn try_call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, ureq::Error> {
        if let Some(v) = body.and_then(|b| serde_json::from_str::<Value>(b).ok()) {
            canaries_in(&v, &mut self.canaries.lock().unwrap());
        }
        let url = format!("{}{path}", self.base);
        let mut req = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            req = req.header("Content-Type", content_type);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.unwrap_or("").to_owned()).unwrap();
        // A kept-alive connection the server closed as the request went out
        // (after an answer that left a body unread, or idle past the header
        // timeout) never reached a handler: send it once more, on a new one.
        let again = req.clone();
        let mut res = match self.agent.run(req) {
            Err(ureq::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                self.agent.run(again)?
            }
            other => other?,
        };
        let status = res.status().as_u16();
        let headers = res
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = res.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Reply {
            status,
            body,
            headers,
        })
    }

    pub fn get(&self, path: &str, key: &str) -> Reply {
        self.call("GET", path, Some(key), None)
    }

    pub fn post(&self, path: &str, key: &str, body: &str) -> Reply {
        self.call("POST", path, Some(key), Some(body))
    }

    /// Creates a card; returns its id.
    pub fn card(&self, key: &str, pan: &str) -> String {
        let r = self.post("/v1/cards", key, &format!(r#"{{"pan":"{pan}"}}"#));
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A control token of `kind` for a card.
    pub fn token(&self, key: &str, card: &str, kind: &str) -> String {
        let body = if kind == "reveal_pin" {
            r#"{"type":"reveal_pin","cardholder_verification_method":"BIOMETRIC_FACE"}"#.to_owned()
        } else {
            format!(r#"{{"type":"{kind}"}}"#)
        };
        let r = self.post(&format!("/v1/cards/{card}/control-tokens"), key, &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["token"].as_str().unwrap().to_owned()
    }

    /// Sets a PIN in clear through a fresh token.
    pub fn set_pin(&self, key: &str, card: &str, pin: &str) -> Reply {
        let token = self.token(key, card, "set_pin");
        self.call(
            "PUT",
            &format!("/v1/cards/{card}/pin"),
            Some(key),
            Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
        )
    }

    /// Reveals the PIN in clear through a fresh token.
    pub fn reveal(&self, key: &str, card: &str) -> String {
        let token = self.token(key, card, "reveal_pin");
        let r = self.post(
            &format!("/v1/cards/{card}/pin/reveal"),
            key,
            &format!(r#"{{"control_token":"{token}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["pin"].as_str().unwrap().to_owned()
    }

    /// The sandbox's answer (`{"result","remaining_tries"}`) for `pin`, in a
    /// test-mode program.
    pub fn sandbox_verify(&self, key: &str, card: &str, pin: &str) -> Value {
        let r = self.post(
            &format!("/v1/test/cards/{card}/pin/verify"),
            key,
            &format!(r#"{{"pin":"{pin}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }
}
