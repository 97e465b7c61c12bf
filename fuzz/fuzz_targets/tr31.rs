//! Fuzzes the TR-31 key block reader (the keyblock crate): any text as a key
//! block under KBPKs of every length the versions take, and blocks the crate
//! wraps from fuzzed headers and keys with one character changed. A panic is a
//! bug; so is a block that unwraps but does not wrap again to the same header
//! and key, a wrapped block that does not unwrap, or a changed one that does.
#![no_main]

use keyblock::{Header, Version, unwrap, wrap};
use libfuzzer_sys::fuzz_target;

/// A deterministic "RNG" for the pad (whatever it draws, the MAC covers it).
struct Counter(u64);
impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 56) as u8;
        }
    }
}
impl rand_core::CryptoRng for Counter {}

const KBPKS: [&[u8]; 3] = [&[0x5A; 16], &[0xA5; 24], &[0x3C; 32]];

fn round_trip(kbpk: &[u8], header: &Header, key: &[u8]) {
    if let Ok(block) = wrap(kbpk, header, key, &mut Counter(7)) {
        let back = unwrap(kbpk, &block).expect("a wrapped block unwraps");
        assert_eq!(&back.header, header);
        assert_eq!(back.key.expose(), key);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for kbpk in KBPKS {
            if let Ok(out) = unwrap(kbpk, text) {
                round_trip(kbpk, &out.header, out.key.expose());
            }
        }
    }

    // A block made here from the input: version, KBPK, header fields, key; then
    // one character of it changed as the input says.
    let [v, k, u0, u1, alg, mode, kv0, kv1, exp, at, to, rest @ ..] = data else {
        return;
    };
    let version = [Version::B, Version::C, Version::D][usize::from(*v) % 3];
    let kbpk = KBPKS[usize::from(*k) % 3];
    let usage: String = [char::from(*u0), char::from(*u1)].iter().collect();
    let key_version: String = [char::from(*kv0), char::from(*kv1)].iter().collect();
    let Ok(mut header) = Header::new(
        version,
        &usage,
        char::from(*alg),
        char::from(*mode),
        &key_version,
        char::from(*exp),
    ) else {
        return;
    };
    let (key, block_data) = rest.split_at(rest.len().min(32));
    if let Ok(data) = std::str::from_utf8(block_data) {
        if let Ok(h) = header.clone().with_optional_block("T1", data) {
            header = h;
        }
    }
    round_trip(kbpk, &header, key);
    if let Ok(block) = wrap(kbpk, &header, key, &mut Counter(9)) {
        let mut bytes = block.into_bytes();
        let i = usize::from(*at) % bytes.len();
        if bytes[i] != *to {
            bytes[i] = *to;
            if let Ok(changed) = String::from_utf8(bytes) {
                assert!(unwrap(kbpk, &changed).is_err(), "a changed block unwrapped");
            }
        }
    }
});
