#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: a panic is a failure
//! Encode and decode per format, beside the raw block-cipher operations they are
//! made of, so the overhead of the PIN block layer reads as a ratio.
//!
//!     cargo bench -p pinblock --bench pinblock

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pinblock::{
    Format, KeyAlgorithm, Pan, Pin, ZoneKey, decipher, decode_clear, encipher, encode_clear,
};
use rand::TryRngCore;
use rand::rngs::OsRng;

const PAN: &str = "4111111111111111";
const TDES: &str = "0123456789ABCDEFFEDCBA9876543210";
const AES128: &str = "000102030405060708090A0B0C0D0E0F";
const AES256: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

fn cases() -> Vec<(&'static str, Format, ZoneKey, usize)> {
    vec![
        (
            "iso_0/tdes",
            Format::Iso0,
            ZoneKey::from_hex(KeyAlgorithm::Tdes, TDES).unwrap(),
            1,
        ),
        (
            "iso_1/tdes",
            Format::Iso1,
            ZoneKey::from_hex(KeyAlgorithm::Tdes, TDES).unwrap(),
            1,
        ),
        (
            "iso_3/tdes",
            Format::Iso3,
            ZoneKey::from_hex(KeyAlgorithm::Tdes, TDES).unwrap(),
            1,
        ),
        (
            "iso_0/aes128",
            Format::Iso0,
            ZoneKey::from_hex(KeyAlgorithm::Aes, AES128).unwrap(),
            1,
        ),
        (
            "iso_4/aes128",
            Format::Iso4,
            ZoneKey::from_hex(KeyAlgorithm::Aes, AES128).unwrap(),
            2,
        ),
        (
            "iso_4/aes256",
            Format::Iso4,
            ZoneKey::from_hex(KeyAlgorithm::Aes, AES256).unwrap(),
            2,
        ),
    ]
}

fn enciphered(c: &mut Criterion) {
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new("1234").unwrap();
    for (name, format, key, block_ops) in cases() {
        let block = encipher(format, &pin, &pan, &key, &mut rand::rng()).unwrap();
        let mut group = c.benchmark_group(name);
        group.bench_function("decode", |b| {
            b.iter(|| decipher(format, black_box(block.as_bytes()), black_box(&pan), &key).unwrap())
        });
        // The raw cipher work a decode is made of: `block_ops` block decryptions.
        group.bench_function(format!("raw {block_ops}x decrypt_block"), |b| {
            let mut buf = [0u8; 16];
            let len = block.as_bytes().len();
            b.iter(|| {
                buf[..len].copy_from_slice(black_box(block.as_bytes()));
                for _ in 0..block_ops {
                    key.decrypt_block(&mut buf[..len]).unwrap();
                }
                black_box(&buf);
            })
        });
        // Random fill from the thread's CSPRNG (ChaCha, seeded from the OS), as the
        // service uses; `encode (OsRng)` pays a getrandom system call per block.
        group.bench_function("encode", |b| {
            let mut rng = rand::rng();
            b.iter(|| encipher(format, black_box(&pin), black_box(&pan), &key, &mut rng).unwrap())
        });
        group.bench_function("encode (OsRng)", |b| {
            let mut os = OsRng.unwrap_err();
            b.iter(|| encipher(format, black_box(&pin), black_box(&pan), &key, &mut os).unwrap())
        });
        group.bench_function(format!("raw {block_ops}x encrypt_block"), |b| {
            let mut buf = [0u8; 16];
            let len = block.as_bytes().len();
            b.iter(|| {
                buf[..len].copy_from_slice(black_box(block.as_bytes()));
                for _ in 0..block_ops {
                    key.encrypt_block(&mut buf[..len]).unwrap();
                }
                black_box(&buf);
            })
        });
        group.finish();
    }
}

fn clear(c: &mut Criterion) {
    let pan = Pan::new(PAN).unwrap();
    let pin = Pin::new("1234").unwrap();
    let mut group = c.benchmark_group("clear");
    for format in Format::ALL {
        let block = encode_clear(format, &pin, &pan, &mut rand::rng());
        group.bench_function(format!("{format} decode"), |b| {
            b.iter(|| decode_clear(format, black_box(block.as_bytes()), black_box(&pan)).unwrap())
        });
        group.bench_function(format!("{format} encode"), |b| {
            let mut rng = rand::rng();
            b.iter(|| encode_clear(format, black_box(&pin), black_box(&pan), &mut rng))
        });
    }
    group.finish();
}

criterion_group!(benches, enciphered, clear);
criterion_main!(benches);
