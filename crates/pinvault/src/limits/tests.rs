//! The limiter's unit tests.

use super::*;

fn one(scope: Scope, rate: &str, max_buckets: usize) -> Limiter {
    let mut s = LimitSettings::off();
    s.set(scope, Rate::parse(rate).unwrap());
    s.max_buckets = max_buckets;
    Limiter::new(s)
}

#[test]
fn parses_rates() {
    assert_eq!(
        Rate::parse("600/min").unwrap(),
        Some(Rate {
            burst: 600,
            per_second: 10.0
        })
    );
    assert_eq!(Rate::parse("off").unwrap(), None);
    assert_eq!(Rate::parse(" 5/s ").unwrap().unwrap().burst, 5);
    assert_eq!(Rate::parse("7200/h").unwrap().unwrap().per_second, 2.0);
    for bad in ["", "5", "5/d", "0/s", "-1/s", "x/s", "5/", "/s", "1.5/s"] {
        assert!(Rate::parse(bad).is_err(), "{bad}");
    }
    let d = LimitSettings::default();
    for scope in Scope::ALL {
        assert!(d.rate(scope).is_some(), "{scope:?} has a default");
    }
}

#[test]
fn a_peek_takes_nothing() {
    let l = one(Scope::CardDecryptFailures, "2/h", 1000);
    let card = ["prg_a", "card_1"];
    for _ in 0..10 {
        l.check_at(Scope::CardDecryptFailures, &card, 1.0, false)
            .unwrap();
    }
    l.check_at(Scope::CardDecryptFailures, &card, 1.0, true)
        .unwrap();
    l.check_at(Scope::CardDecryptFailures, &card, 1.0, false)
        .unwrap();
    l.check_at(Scope::CardDecryptFailures, &card, 1.0, true)
        .unwrap();
    let e = l
        .check_at(Scope::CardDecryptFailures, &card, 1.0, false)
        .unwrap_err();
    assert_eq!(e.retry_after_secs(), 1800);
}

#[test]
fn a_burst_then_refused_with_a_retry_after() {
    let l = one(Scope::CardVerify, "3/min", 1000);
    let card = ["prg_a", "card_1"];
    for _ in 0..3 {
        l.check_at(Scope::CardVerify, &card, 5.0, true).unwrap();
    }
    let e = l.check_at(Scope::CardVerify, &card, 5.0, true).unwrap_err();
    assert_eq!(e.scope, Scope::CardVerify);
    // One request per 20 s comes back.
    assert_eq!(e.retry_after_secs(), 20);
    let e = l
        .check_at(Scope::CardVerify, &card, 19.5, true)
        .unwrap_err();
    assert_eq!(e.retry_after_secs(), 6, "{e:?}");
    l.check_at(Scope::CardVerify, &card, 25.0, true).unwrap();
    // Another card, another program, another scope: their own buckets.
    l.check_at(Scope::CardVerify, &["prg_a", "card_2"], 25.0, true)
        .unwrap();
    l.check_at(Scope::CardVerify, &["prg_b", "card_1"], 25.0, true)
        .unwrap();
    l.check_at(Scope::CardTokens, &card, 25.0, true).unwrap();
    let counts: Vec<_> = l.limited_counts().collect();
    assert!(counts.contains(&(Scope::CardVerify, 2)));
    assert!(counts.contains(&(Scope::KeyVerify, 0)));
    // The clock-reading entry point takes from the same buckets.
    l.check(Scope::CardVerify, &["prg_c", "card_1"]).unwrap();
}

#[test]
fn refills_over_time() {
    let l = one(Scope::KeyVerify, "1000/s", 1000);
    for _ in 0..1000 {
        l.check_at(Scope::KeyVerify, &["key"], 1.0, true).unwrap();
    }
    assert!(l.check_at(Scope::KeyVerify, &["key"], 1.0, true).is_err());
    // 20 ms later, 20 more; after a long pause, never more than the burst.
    for _ in 0..20 {
        l.check_at(Scope::KeyVerify, &["key"], 1.020, true).unwrap();
    }
    assert!(l.check_at(Scope::KeyVerify, &["key"], 1.020, true).is_err());
    for _ in 0..1000 {
        l.check_at(Scope::KeyVerify, &["key"], 100.0, true).unwrap();
    }
    assert!(l.check_at(Scope::KeyVerify, &["key"], 100.0, true).is_err());
}

#[test]
fn unlimited_scopes_hold_no_buckets() {
    let l = Limiter::new(LimitSettings::off());
    for i in 0..100 {
        l.check(Scope::KeyVerify, &[&i.to_string()]).unwrap();
    }
    assert_eq!(l.buckets(), 0);
}

#[test]
fn memory_is_bounded() {
    let l = one(Scope::WidgetAddress, "10/min", 2048);
    for i in 0..50_000 {
        // Every address sends two requests, so no bucket is full again.
        let a = format!("10.0.{}.{}", i / 256, i % 256);
        l.check_at(Scope::WidgetAddress, &[&a], 1.0, true).unwrap();
        l.check_at(Scope::WidgetAddress, &[&a], 1.0, true).unwrap();
    }
    assert!(l.buckets() <= 2048 + SHARDS, "{}", l.buckets());
    // A busy key that keeps sending is still limited after the churn.
    for _ in 0..10 {
        let _ = l.check_at(Scope::WidgetAddress, &["busy"], 1.0, true);
    }
    assert!(
        l.check_at(Scope::WidgetAddress, &["busy"], 1.0, true)
            .is_err()
    );
}

#[test]
fn idle_buckets_are_dropped_first() {
    let l = one(Scope::KeyTokens, "10/s", 64 * 16);
    for i in 0..20_000 {
        // Each bucket is full again a second after its one request.
        l.check_at(Scope::KeyTokens, &[&i.to_string()], f64::from(i), true)
            .unwrap();
    }
    assert!(l.buckets() <= 64 * 16 + SHARDS, "{}", l.buckets());
    // A bucket in use (emptied just now) survives the sweeps that new
    // keys cause: they drop the idle buckets, which fill every shard.
    for _ in 0..10 {
        l.check_at(Scope::KeyTokens, &["busy"], 30_000.0, true)
            .unwrap();
    }
    for i in 0..100 {
        l.check_at(Scope::KeyTokens, &[&format!("x{i}")], 30_000.01, true)
            .unwrap();
    }
    assert!(l.buckets() <= 64 * 16 + SHARDS, "{}", l.buckets());
    assert!(
        l.check_at(Scope::KeyTokens, &["busy"], 30_000.01, true)
            .is_err()
    );
}
