//! Abuse limits: token buckets per API key, per card and per client address,
//! held in this process's memory (limits are per node: N nodes behind a load
//! balancer allow up to N times a limit). Cheap enough for the verification hot
//! path: no database round trip, one short lock on one of many shards, and a
//! bounded number of buckets (idle ones are evicted).

mod cidr;

pub use cidr::Cidr;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a bucket limits. The label is the metric label and the flag's stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    KeyVerify,
    KeyTokens,
    KeyReveal,
    /// Card lookups by PAN (`POST /v1/card-lookups`).
    KeyLookups,
    /// PIN exports (`POST /v1/cards/{id}/pin/export`).
    KeyExport,
    CardVerify,
    CardTokens,
    CardReveal,
    CardExport,
    /// PIN blocks for one card that did not decipher or parse: counted only
    /// on such a failure, and checked before every PIN block (see
    /// [`Limiter::peek`]).
    CardDecryptFailures,
    WidgetAddress,
}

impl Scope {
    pub const ALL: [Scope; 11] = [
        Scope::KeyVerify,
        Scope::KeyTokens,
        Scope::KeyReveal,
        Scope::KeyLookups,
        Scope::KeyExport,
        Scope::CardVerify,
        Scope::CardTokens,
        Scope::CardReveal,
        Scope::CardExport,
        Scope::CardDecryptFailures,
        Scope::WidgetAddress,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Scope::KeyVerify => "key_verify",
            Scope::KeyTokens => "key_tokens",
            Scope::KeyReveal => "key_reveal",
            Scope::KeyLookups => "key_lookups",
            Scope::KeyExport => "key_export",
            Scope::CardVerify => "card_verify",
            Scope::CardTokens => "card_tokens",
            Scope::CardReveal => "card_reveal",
            Scope::CardExport => "card_export",
            Scope::CardDecryptFailures => "card_decrypt_failures",
            Scope::WidgetAddress => "widget_address",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A limit: a bucket of `burst` requests, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub burst: u32,
    pub per_second: f64,
}

impl Rate {
    /// `N/s`, `N/min` or `N/h` (a burst of N, refilled evenly over the
    /// period), or `off`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let err = || format!("`{text}`: expected N/s, N/min, N/h or off");
        let (n, unit) = text.split_once('/').ok_or_else(err)?;
        let n: u32 = n.trim().parse().map_err(|_| err())?;
        let seconds = match unit.trim() {
            "s" => 1.0,
            "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        if n == 0 {
            return Err(format!("`{text}`: N must be at least 1 (or say off)"));
        }
        Ok(Some(Rate {
            burst: n,
            per_second: f64::from(n) / seconds,
        }))
    }
}

/// The limits of a server; `None` is unlimited.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSettings {
    pub rates: [Option<Rate>; Scope::ALL.len()],
    /// Most buckets held at once (all scopes together).
    pub max_buckets: usize,
}

/// The documented defaults (README, `serve --help`).
pub const DEFAULTS: [(Scope, &str); 11] = [
    (Scope::KeyVerify, "50000/s"),
    (Scope::KeyTokens, "10000/s"),
    (Scope::KeyReveal, "10000/s"),
    (Scope::KeyLookups, "50000/s"),
    (Scope::KeyExport, "10000/s"),
    (Scope::CardVerify, "600/min"),
    (Scope::CardTokens, "120/min"),
    (Scope::CardReveal, "120/min"),
    (Scope::CardExport, "10/h"),
    (Scope::CardDecryptFailures, "20/h"),
    (Scope::WidgetAddress, "600/min"),
];

impl Default for LimitSettings {
    fn default() -> Self {
        let mut rates = [None; Scope::ALL.len()];
        for (scope, text) in DEFAULTS {
            rates[scope.index()] = Rate::parse(text).ok().flatten();
        }
        LimitSettings {
            rates,
            max_buckets: 100_000,
        }
    }
}

impl LimitSettings {
    /// No limits at all.
    pub fn off() -> Self {
        LimitSettings {
            rates: [None; Scope::ALL.len()],
            max_buckets: 100_000,
        }
    }

    pub fn set(&mut self, scope: Scope, rate: Option<Rate>) {
        self.rates[scope.index()] = rate;
    }

    pub fn rate(&self, scope: Scope) -> Option<Rate> {
        self.rates[scope.index()]
    }
}

const SHARDS: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    /// When `tokens` was last brought up to date, in seconds since the
    /// limiter's epoch.
    at: f64,
    /// A bucket's refill rate, so that a sweep can tell when it is full.
    per_second: f64,
    burst: f64,
}

impl Bucket {
    fn refill(&mut self, now: f64) {
        let elapsed = (now - self.at).max(0.0);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.at = now;
    }

    /// Full again by `now`: as good as a fresh bucket, so it may be dropped.
    fn idle(&self, now: f64) -> bool {
        self.tokens + (now - self.at).max(0.0) * self.per_second >= self.burst
    }
}

/// Too many requests: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After`, rounded up (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let s = self.retry_after.as_secs_f64().ceil();
        if s < 1.0 { 1 } else { s as u64 }
    }
}

/// The buckets of every scope, in shards keyed by a keyed hash of (scope, key).
/// Two keys whose 64-bit hashes collide share a bucket (harmless: rarer than
/// one in 10^9 at the bucket bound).
pub struct Limiter {
    settings: LimitSettings,
    hasher: std::collections::hash_map::RandomState,
    shards: Box<[Mutex<Buckets>]>,
    per_shard: usize,
    epoch: Instant,
    limited: [AtomicU64; Scope::ALL.len()],
}

debug_fields!(Limiter: settings);

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new(LimitSettings::default())
    }
}

/// The map's keys are already keyed hashes: used as they are. (The shard is
/// chosen by middle bits, which the map's index and tag bits do not use.)
#[derive(Default)]
struct Identity(u64);
impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Buckets = HashMap<u64, Bucket, BuildHasherDefault<Identity>>;

impl Limiter {
    pub fn new(settings: LimitSettings) -> Self {
        let per_shard = settings.max_buckets.div_ceil(SHARDS).max(16);
        Limiter {
            settings,
            hasher: std::collections::hash_map::RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(Buckets::default()))
                .collect(),
            per_shard,
            epoch: Instant::now(),
            limited: Default::default(),
        }
    }

    pub fn settings(&self) -> &LimitSettings {
        &self.settings
    }

    /// Takes one request from the bucket of `parts` (joined, e.g. a program
    /// and a card id) in `scope`; `Err` when it is empty.
    pub fn check(&self, scope: Scope, parts: &[&str]) -> Result<(), Limited> {
        self.check_at(scope, parts, self.epoch.elapsed().as_secs_f64(), true)
    }

    /// Whether the bucket of `parts` in `scope` has a request left, taking
    /// none (for a limit on failures: looked at before, taken from on failure).
    pub fn peek(&self, scope: Scope, parts: &[&str]) -> Result<(), Limited> {
        self.check_at(scope, parts, self.epoch.elapsed().as_secs_f64(), false)
    }

    /// [`Limiter::check`] (or, not `take`, [`Limiter::peek`]) at `now` seconds
    /// after the limiter was made (the tests give the time rather than wait).
    fn check_at(&self, scope: Scope, parts: &[&str], now: f64, take: bool) -> Result<(), Limited> {
        let Some(rate) = self.settings.rate(scope) else {
            return Ok(());
        };
        let mut h = self.hasher.build_hasher();
        scope.hash(&mut h);
        for p in parts {
            p.hash(&mut h);
        }
        let key = h.finish();
        let shard = &self.shards[(key >> 32) as usize % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.per_shard && !map.contains_key(&key) {
            evict(&mut map, now, self.per_shard);
        }
        let bucket = map.entry(key).or_insert(Bucket {
            tokens: f64::from(rate.burst),
            at: now,
            per_second: rate.per_second,
            burst: f64::from(rate.burst),
        });
        bucket.refill(now);
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / rate.per_second;
        drop(map);
        self.limited[scope.index()].fetch_add(1, Ordering::Relaxed);
        Err(Limited {
            scope,
            retry_after: Duration::from_secs_f64(wait),
        })
    }

    /// Requests refused, per scope, for the metrics.
    pub fn limited_counts(&self) -> impl Iterator<Item = (Scope, u64)> + '_ {
        Scope::ALL
            .iter()
            .map(|s| (*s, self.limited[s.index()].load(Ordering::Relaxed)))
    }

    /// Buckets held now (for tests and the metrics).
    pub fn buckets(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

/// Makes room in a full shard: first drops the buckets that have refilled
/// (dropping them changes nothing); if most are still in use, drops the least
/// recently used half, which lets those keys start again from a full bucket
/// (failing open for them, rather than refusing keys never seen).
fn evict(map: &mut Buckets, now: f64, cap: usize) {
    map.retain(|_, b| !b.idle(now));
    if map.len() * 4 < cap * 3 {
        return;
    }
    let mut ats: Vec<f64> = map.values().map(|b| b.at).collect();
    let mid = ats.len() / 2;
    ats.select_nth_unstable_by(mid, f64::total_cmp);
    let cut = ats[mid];
    map.retain(|_, b| b.at > cut);
}

#[cfg(test)]
mod tests;
