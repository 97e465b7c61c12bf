//! Fuzzes PIN block parsing: any bytes as a block of any format, under any key
//! kind and PAN, and any text as a PIN, PAN, key or format name. A panic is a bug;
//! so is a decoded PIN that does not survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pinblock::{
    Format, KeyAlgorithm, Pan, Pin, SecretKey, ZoneKey, decipher, decode_clear, encipher,
    encode_clear,
};

/// A deterministic "RNG" for the round trips (the fill it draws does not matter).
struct Counter(u64);
impl rand_core::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 56) as u8;
        }
    }
}
impl rand_core::CryptoRng for Counter {}

fuzz_target!(|data: &[u8]| {
    // Text paths.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Pin::new(text);
        let _ = Pan::new(text);
        let _ = text.parse::<Format>();
        let _ = text.parse::<KeyAlgorithm>();
        let _ = ZoneKey::from_hex(KeyAlgorithm::Tdes, text);
        let _ = ZoneKey::from_hex(KeyAlgorithm::Aes, text);
    }

    // Block paths: [selector][key 32][pan len][pan digits…][block…]
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some((key_bytes, rest)) = rest.split_at_checked(32) else { return };
    let Some((&pan_len, rest)) = rest.split_first() else { return };
    let pan_len = usize::from(pan_len % 19) + 1;
    let Some((pan_bytes, block)) = rest.split_at_checked(pan_len) else { return };
    let pan_text: String = pan_bytes.iter().map(|b| char::from(b'0' + b % 10)).collect();
    let Ok(pan) = Pan::new(&pan_text) else { return };

    let format = Format::ALL[usize::from(selector & 3)];
    let (algorithm, key_len) = match (selector >> 2) % 5 {
        0 => (KeyAlgorithm::Tdes, 16),
        1 => (KeyAlgorithm::Tdes, 24),
        2 => (KeyAlgorithm::Aes, 16),
        3 => (KeyAlgorithm::Aes, 24),
        _ => (KeyAlgorithm::Aes, 32),
    };
    let Ok(secret) = SecretKey::from_slice(&key_bytes[..key_len]) else { return };
    let Ok(key) = ZoneKey::new(algorithm, &secret) else { return };
    let mut rng = Counter(u64::from(selector));

    if let Ok(pin) = decode_clear(format, block, &pan) {
        let again = encode_clear(format, &pin, &pan, &mut rng);
        let back = decode_clear(format, again.as_bytes(), &pan).expect("clear round trip");
        assert!(bool::from(back.ct_eq(&pin)));
    }
    if let Ok(pin) = decipher(format, block, &pan, &key) {
        let again = encipher(format, &pin, &pan, &key, &mut rng).expect("encipher what deciphered");
        let back = decipher(format, again.as_bytes(), &pan, &key).expect("enciphered round trip");
        assert!(bool::from(back.ct_eq(&pin)));
    }
});
