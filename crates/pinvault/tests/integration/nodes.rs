//! Several server processes (nodes) on one database, as behind a load balancer:
//! counts (token attempts, PIN tries) stay exact when requests for the same card
//! come through different nodes at the same moment, a key rotation reaches every node, a node killed
//! in the middle of work loses nothing it answered, and readiness follows the
//! database. They run on SQLite (two processes on one file) and, with
//! `PINVAULT_TEST_BACKEND=postgres`, on PostgreSQL (`scripts/test` runs both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use crate::harness::{self, Server};

const PAN: &str = "4111111111111111";
const PLAIN: &[&str] = &["allow_plaintext_pin=true", "allow_plaintext_reveal=true"];

/// Two nodes on one fresh database, with a program that allows PINs in clear.
fn two_nodes(tag: &str) -> (Arc<Server>, Arc<Server>, Arc<String>) {
    let a = Server::start(tag);
    let b = a.another_node();
    let key = a.program("live", PLAIN);
    (Arc::new(a), Arc::new(b), Arc::new(key))
}

/// Runs `n` requests at once (released together by a barrier), request `i`
/// through node `i % 2`; returns what each got, in order.
fn at_once<T: Send + 'static>(
    nodes: [&Arc<Server>; 2],
    n: usize,
    request: impl Fn(usize, &Server) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let request = Arc::new(request);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (node, barrier, request) = (nodes[i % 2].clone(), barrier.clone(), request.clone());
            std::thread::spawn(move || {
                barrier.wait();
                request(i, &node)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn put_pin(node: &Server, key: &str, card: &str, token: &str, pin: &str) -> harness::Reply {
    node.call(
        "PUT",
        &format!("/v1/cards/{card}/pin"),
        Some(key),
        Some(&format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#)),
    )
}

#[test]
fn one_token_redeemed_through_two_nodes_at_once_wins_once() {
    let (a, b, key) = two_nodes("race2");
    let card = Arc::new(a.card(&key, PAN));
    for round in 0..3 {
        let token = Arc::new(a.token(&key, &card, "set_pin"));
        let (k, c, t) = (key.clone(), card.clone(), token.clone());
        let results = at_once([&a, &b], 16, move |i, node| {
            let pin = format!("{}", 820_000 + round * 100 + i);
            (put_pin(node, &k, &c, &t, &pin).status, pin)
        });
        let winners: Vec<&(u16, String)> = results.iter().filter(|(s, _)| *s == 204).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        assert!(
            results.iter().all(|(s, _)| *s == 204 || *s == 403),
            "{results:?}"
        );
        // Both nodes read the winner's PIN.
        assert_eq!(a.reveal(&key, &card), winners[0].1);
        assert_eq!(b.reveal(&key, &card), winners[0].1);
    }
}

/// 20 refused PINs at once through two nodes on a token with 5 attempts use
/// exactly 5; the other 15 find it exhausted.
#[test]
fn token_attempts_are_exact_across_two_nodes() {
    let (a, b, key) = two_nodes("attempts2");
    let card = Arc::new(a.card(&key, PAN));
    let token = Arc::new(b.token(&key, &card, "set_pin"));
    let (k, c, t) = (key.clone(), card.clone(), token.clone());
    let results = at_once([&a, &b], 20, move |_, node| {
        let r = put_pin(node, &k, &c, &t, "0000");
        (r.status, r.code().to_owned())
    });
    let weak = results
        .iter()
        .filter(|(s, c)| *s == 422 && c == "weak_pin")
        .count();
    let exhausted = results
        .iter()
        .filter(|(s, c)| *s == 403 && c == "token_exhausted")
        .count();
    assert_eq!((weak, exhausted), (5, 15), "{results:?}");
}

/// 50 wrong PIN blocks at once for one card, split across two nodes, as two
/// authorization hosts would send them: exactly `max_tries` (4) are counted as
/// mismatches, the other 46 answer `blocked`, and the card ends blocked and
/// inactive, with a fail count of exactly 4.
#[test]
fn wrong_pins_through_two_nodes_stop_at_exactly_max_tries() {
    let (a, b, _) = two_nodes("verify2");
    let key = Arc::new(a.program("live", &["allow_plaintext_pin=true", "max_tries=4"]));
    // A TDES zone key (published check value 08D7B4) and a block for a wrong PIN
    // made by the integrator tool.
    let zpk_hex = "0123456789ABCDEFFEDCBA9876543210";
    let zpk = a.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &a.program_of(&key),
        "--name",
        "acquirer",
        "--algorithm",
        "tdes",
        "--component",
        zpk_hex,
    ])["zone_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = std::process::Command::new(harness::BIN)
        .args([
            "pinblock", "encode", "--format", "iso_0", "--pin", "1234", "--pan", PAN, "--key",
            zpk_hex,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let block = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let r = a.post(
        "/v1/cards",
        &key,
        &format!(r#"{{"pan":"{PAN}","pin":{{"pin":"2580"}}}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let card = r.body["id"].as_str().unwrap().to_owned();

    let (k, c) = (key.clone(), card.clone());
    let results = at_once([&a, &b], 50, move |_, node| {
        let r = node.post(
            &format!("/v1/cards/{c}/pin/verify"),
            &k,
            &format!(r#"{{"pin_block":"{block}","format":"iso_0","zone_key_id":"{zpk}"}}"#),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        (
            r.body["result"].as_str().unwrap().to_owned(),
            r.body["remaining_tries"].as_u64().unwrap(),
        )
    });
    let mut remaining: Vec<u64> = results
        .iter()
        .filter(|(result, _)| result == "mismatch")
        .map(|(_, left)| *left)
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [0, 1, 2, 3], "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|(result, _)| result == "blocked")
            .count(),
        46,
        "{results:?}"
    );
    for node in [&a, &b] {
        let status = node.get(&format!("/v1/cards/{card}/pin/status"), &key).body;
        assert_eq!(status["fail_count"], 4, "{status}");
        assert_eq!(status["status"], "blocked", "{status}");
        assert_eq!(
            node.get(&format!("/v1/cards/{card}"), &key).body["status"],
            "inactive"
        );
    }
}

/// Tokens made for one card through both nodes at once: only the newest is
/// valid afterwards, whichever node made it.
#[test]
fn only_the_newest_token_is_valid_when_two_nodes_make_them_at_once() {
    let (a, b, key) = two_nodes("newest2");
    let card = Arc::new(a.card(&key, PAN));
    let (k, c) = (key.clone(), card.clone());
    let tokens = at_once([&a, &b], 8, move |_, node| node.token(&k, &c, "set_pin"));
    let statuses: Vec<u16> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| put_pin([&a, &b][i % 2], &key, &card, t, "739164").status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 204).count(),
        1,
        "{statuses:?}"
    );
}

/// The same Idempotency-Key through both nodes at once creates one card, and
/// every request gets that card.
#[test]
fn one_idempotency_key_through_two_nodes_creates_one_card() {
    let (a, b, key) = two_nodes("idem2");
    let k = key.clone();
    let results = at_once([&a, &b], 10, move |_, node| {
        let r = node.call_with(
            "POST",
            "/v1/cards",
            Some(&k),
            Some(r#"{"pan":"4111111111111111","external_id":"idem-two-nodes"}"#),
            "application/json",
            &[("Idempotency-Key", "two-nodes-1")],
        );
        (r.status, r.body["id"].as_str().unwrap_or("").to_owned())
    });
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    assert!(
        results.iter().all(|(_, id)| *id == results[0].1),
        "{results:?}"
    );
    let listed = b.get("/v1/cards?external_id=idem-two-nodes", &key);
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
}

/// `pinvault keys rotate` while two nodes serve: both read every card after it,
/// and both write with the new versions (the old ones end up protecting nothing).
#[test]
fn key_rotation_from_the_command_line_reaches_every_node() {
    let (a, b, key) = two_nodes("rotate2");
    let pins = ["739164", "582047", "164820", "905182"];
    let cards: Vec<String> = pins
        .iter()
        .enumerate()
        .map(|(i, pin)| {
            let node = [&a, &b][i % 2];
            let card = node.card(&key, PAN);
            assert_eq!(node.set_pin(&key, &card, pin).status, 204);
            card
        })
        .collect();
    let report = a.cli_json(&["keys", "rotate"]);
    assert_eq!(report["cards_reencrypted"], 4, "{report}");
    for (card, pin) in cards.iter().zip(pins) {
        assert_eq!(a.reveal(&key, card), pin);
        assert_eq!(b.reveal(&key, card), pin);
    }
    // Writes through either node after the rotation use the new versions.
    for (node, other) in [(&a, &b), (&b, &a)] {
        let card = node.card(&key, PAN);
        assert_eq!(node.set_pin(&key, &card, "730641").status, 204);
        assert_eq!(other.reveal(&key, &card), "730641");
    }
    let listed = a.cli_json(&["keys", "list"]);
    for entry in listed.as_array().unwrap() {
        if entry["current"] == false {
            assert_eq!(entry["protects"], 0, "{listed}");
        } else {
            assert_eq!(entry["version"], 2, "{listed}");
        }
    }
}

/// A node killed (SIGKILL) in the middle of a load of PIN changes: every change
/// it answered 204 is there afterwards; a change it never answered is either
/// there or not, nothing else.
#[test]
fn a_killed_node_loses_no_answered_pin_change() {
    let a = Arc::new(Server::start("crash"));
    let key = Arc::new(a.program("live", PLAIN));
    let cards: Vec<String> = (0..6)
        .map(|i| {
            let card = a.card(&key, PAN);
            assert_eq!(a.set_pin(&key, &card, &format!("8{i}0000")).status, 204);
            card
        })
        .collect();
    let answered = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = cards
        .iter()
        .enumerate()
        .map(|(i, card)| {
            let (a, key, card, answered) = (a.clone(), key.clone(), card.clone(), answered.clone());
            std::thread::spawn(move || {
                // The last PIN answered 204, and at the end the one sent without an answer.
                let mut last = format!("8{i}0000");
                for n in 0..10_000 {
                    let pin = format!("7{i}{n:04}");
                    let token = match a.try_call(
                        "POST",
                        &format!("/v1/cards/{card}/control-tokens"),
                        Some(&key),
                        Some(r#"{"type":"set_pin"}"#),
                    ) {
                        Ok(r) if r.status == 201 => r.body["token"].as_str().unwrap().to_owned(),
                        Ok(r) => panic!("token: {} {}", r.status, r.body),
                        Err(_) => return (card, last, None),
                    };
                    let body = format!(r#"{{"control_token":"{token}","pin":"{pin}"}}"#);
                    match a.try_call(
                        "PUT",
                        &format!("/v1/cards/{card}/pin"),
                        Some(&key),
                        Some(&body),
                    ) {
                        Ok(r) if r.status == 204 => {
                            last = pin;
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(r) => panic!("set PIN: {} {}", r.status, r.body),
                        Err(_) => return (card, last, Some(pin)),
                    }
                }
                panic!("the node was never killed");
            })
        })
        .collect();
    while answered.load(Ordering::SeqCst) < 120 {
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill9();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let b = Server::start_in(a.data.clone());
    for (card, last, unanswered) in outcomes {
        let pin = b.reveal(&key, &card);
        assert!(
            pin == last || Some(&pin) == unanswered.as_ref(),
            "card {card}: PIN is {pin}, expected {last} (answered) or {unanswered:?} (unanswered)"
        );
    }
}

/// A TCP relay to the PostgreSQL server that can be cut (every connection
/// closed, new ones refused) and restored, to take the database away from a
/// node without touching the server other tests use.
struct Relay {
    addr: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut open = open2.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Polls `/readyz` (at most about 30 s) until it answers `status`.
fn wait_ready(node: &Server, status: u16) -> harness::Reply {
    for _ in 0..300 {
        let r = node.call("GET", "/readyz", None, None);
        if r.status == status {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("/readyz never answered {status}");
}

/// PostgreSQL only: with the database unreachable, `/readyz` answers 503 with
/// the reason and requests fail cleanly; when it is back, the node recovers
/// by itself.
#[test]
fn postgres_only_readiness_follows_the_database() {
    if !harness::postgres_only("nodes::postgres_only_readiness_follows_the_database") {
        return;
    }
    let dir = harness::fresh_dir("outage");
    let url = dir.database_url.clone().unwrap();
    // postgres://[user@]host:port/db…: send the node through the relay.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = match rest.split_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let (hostport, path) = rest.split_once('/').unwrap();
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let relay = Relay::start(upstream);
    let relayed = format!("{scheme}://{user}{}/{path}", relay.addr);
    let node = Server::start_with(
        dir.clone(),
        vec![("PINVAULT_DATABASE_URL".to_owned(), relayed)],
    );
    let key = node.program("live", PLAIN);
    node.card(&key, PAN);
    assert_eq!(node.call("GET", "/readyz", None, None).status, 200);

    relay.cut();
    let down = wait_ready(&node, 503);
    assert_eq!(down.body["status"], "unavailable", "{}", down.body);
    assert!(
        down.body["reason"].as_str().unwrap().contains("database"),
        "{}",
        down.body
    );
    let r = node.post("/v1/cards", &key, &format!(r#"{{"pan":"{PAN}"}}"#));
    assert!(r.status >= 500, "{} {}", r.status, r.body);
    assert_eq!(r.body["code"], "internal", "{}", r.body);

    relay.restore();
    wait_ready(&node, 200);
    let card = node.card(&key, PAN);
    assert_eq!(node.set_pin(&key, &card, "739164").status, 204);
    assert!(!node.logs().contains("panicked"));
}
