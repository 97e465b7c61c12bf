//! PIN change at an ATM under concurrency, and what it leaves: racing changes
//! with the right current PIN make exactly one change (the others are checked
//! against the PIN it wrote), a change racing verifications never loses a
//! try, and the events and audit records say where the change came from.
//! (Independent blocks, every format and key size: tests/interop/verify_api.py.)

use std::sync::Arc;

use crate::harness::Server;

use super::support::*;

fn change(
    s: &Server,
    key: &str,
    card: &str,
    v: &Vector,
    current: &str,
    new: &str,
    zpk: &str,
) -> (String, Option<String>) {
    let body = format!(
        r#"{{"pin_block":"{current}","new_pin_block":"{new}","format":"{}","zone_key_id":"{zpk}"}}"#,
        v.format
    );
    let r = s.post(&format!("/v1/cards/{card}/pin/change"), key, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    (
        r.body["result"].as_str().unwrap().to_owned(),
        r.body["change_id"].as_str().map(str::to_owned),
    )
}

#[test]
fn racing_changes_make_one_change_and_count_the_rest() {
    let s = Arc::new(Server::start("atm-race"));
    let key = Arc::new(s.program(
        "live",
        &[
            "allow_plaintext_pin=true",
            "max_tries=5",
            "reject_weak_pins=false",
        ],
    ));
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let zpk = Arc::new(import(&s, &key, algorithm(&v), &[&v.key]));
    let c = Arc::new(card(&s, &key, &v.pan, &v.pin));
    let news: Vec<String> = (0..4).map(|i| format!("70{i}9")).collect();
    let barrier = Arc::new(std::sync::Barrier::new(news.len()));
    let handles: Vec<_> = news
        .iter()
        .map(|new| {
            let (s, key, c, zpk, v, b) = (
                s.clone(),
                key.clone(),
                c.clone(),
                zpk.clone(),
                v.clone(),
                barrier.clone(),
            );
            let new_block = cli_block(&s, &v, new);
            std::thread::spawn(move || {
                b.wait();
                change(&s, &key, &c, &v, &v.enciphered, &new_block, &zpk)
            })
        })
        .collect();
    let outcomes: Vec<(String, Option<String>)> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    let changed: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].0 == "changed")
        .collect();
    assert_eq!(changed.len(), 1, "{outcomes:?}");
    let mismatches = outcomes.iter().filter(|o| o.0 == "mismatch").count();
    assert_eq!(mismatches, news.len() - 1, "{outcomes:?}");
    assert_eq!(
        fail_count(&s, &key, &c),
        mismatches as u64,
        "every loser is a counted try"
    );
    // The winner's PIN is the card's.
    let winner = cli_block(&s, &v, &news[changed[0]]);
    assert_eq!(
        outcome(&verify(&s, &key, &c, &v.format, &winner, &zpk)),
        ("match".into(), 5)
    );

    // The event and the audit record say it came from an ATM, with its id.
    let change_id = outcomes[changed[0]].1.clone().unwrap();
    let events = s
        .get(&format!("/v1/events?card_id={c}&type=pin.changed"), &key)
        .body;
    let data = &events["data"][0]["data"];
    assert_eq!(
        (data["source"].as_str(), data["change_id"].as_str()),
        (Some("atm"), Some(change_id.as_str())),
        "{events}"
    );
    let audit = s
        .cli_json(&["audit", "list", "--limit", "1000"])
        .to_string();
    assert!(
        audit.contains(&change_id) && audit.contains("\"source\":\"atm\""),
        "{audit}"
    );
    // Reversed: its own event; the PIN before it is back.
    let r = s.post(&format!("/v1/pin-changes/{change_id}/reverse"), &key, "");
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        outcome(&verify(&s, &key, &c, &v.format, &v.enciphered, &zpk)),
        ("match".into(), 5)
    );
    let events = s
        .get(
            &format!("/v1/events?card_id={c}&type=pin.change_reversed"),
            &key,
        )
        .body;
    assert_eq!(
        events["data"][0]["data"]["change_id"],
        change_id.as_str(),
        "{events}"
    );
    for bad in [
        "pch_aaaaaaaaaaaaaaaaaaaaaaaa",
        "nope",
        "card_aaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let r = s.post(&format!("/v1/pin-changes/{bad}/reverse"), &key, "");
        assert_eq!(
            (r.status, r.code()),
            (404, "not_found"),
            "{bad}: {}",
            r.body
        );
    }
}

/// Bad input is refused before anything is counted: the shape of the body,
/// a zone key of another program, a malformed `icc_data`.
#[test]
fn bad_changes_count_nothing() {
    let s = Server::start("atm-bad");
    let (key, v, zpk, c) = iso4_card(&s);
    let new = cli_block(&s, &v, "7391");
    let other = s.program("live", SETTINGS);
    let theirs = import(&s, &other, algorithm(&v), &[&v.key]);
    let cases = [
        (
            format!(
                r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_9","zone_key_id":"{zpk}"}}"#,
                v.enciphered
            ),
            422,
            "invalid_request",
        ),
        (
            format!(
                r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_4","zone_key_id":"{theirs}"}}"#,
                v.enciphered
            ),
            404,
            "not_found",
        ),
        (
            format!(
                r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_4","zone_key_id":"{zpk}","icc_data":"9F2"}}"#,
                v.enciphered
            ),
            422,
            "invalid_request",
        ),
        (
            format!(
                r#"{{"pin_block":"{}","format":"iso_4","zone_key_id":"{zpk}"}}"#,
                v.enciphered
            ),
            422,
            "invalid_request",
        ),
        (
            format!(
                r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_4","zone_key_id":"{zpk}","pin":"1234"}}"#,
                v.enciphered
            ),
            422,
            "invalid_request",
        ),
    ];
    for (body, status, code) in cases {
        let r = s.post(&format!("/v1/cards/{c}/pin/change"), &key, &body);
        assert_eq!((r.status, r.code()), (status, code), "{body}: {}", r.body);
        assert!(
            !r.body.to_string().contains(&v.enciphered),
            "no block in an error: {}",
            r.body
        );
    }
    assert_eq!(fail_count(&s, &key, &c), 0);
    let r = s.post(
        "/v1/cards/card_aaaaaaaaaaaaaaaaaaaaaaaa/pin/change",
        &key,
        &format!(r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_4","zone_key_id":"{zpk}"}}"#, v.enciphered),
    );
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    // With well-formed chip data on a card without a chip: changed, no script.
    let body = format!(
        r#"{{"pin_block":"{}","new_pin_block":"{new}","format":"iso_4","zone_key_id":"{zpk}","icc_data":"9F2608AABBCCDDEEFF00119F36020042"}}"#,
        v.enciphered
    );
    let r = s.post(&format!("/v1/cards/{c}/pin/change"), &key, &body);
    assert_eq!(
        (r.status, r.body["result"].as_str()),
        (200, Some("changed")),
        "{}",
        r.body
    );
    assert!(r.body["icc_response_data"].is_null(), "{}", r.body);
}
