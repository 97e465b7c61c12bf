//! Reads a JSON array of cases on stdin, answers each with the `keyblock` and
//! `pinblock` crates and writes a JSON array of results (`{"ok": …}` or
//! `{"err": "…"}`) to stdout. tests/interop/legacy_interop.py drives it against
//! psec.
//!
//! Operations (keys and key material in hex):
//! - `pvv` {pvk, pan, pvki (0-9), pin} → the 4 PVV digits
//! - `verify_pvv` {pvk, pan, pvki, pin, pvv} → true/false
//! - `ibm_offset` {pvk, pan, pin, table, voff, vlen, pad, check} → the offset
//! - `verify_ibm` {…the same, offset} → true/false
//! - `unwrap` {kbpk, block} → {version, key_usage, algorithm, mode_of_use,
//!   key_version, exportability, blocks: [[id, data]…], key}
//! - `wrap` {kbpk, version, key_usage, algorithm, mode_of_use, key_version,
//!   exportability, blocks, key, masked?, pad?} → the block; with `pad` (hex) the
//!   random pad is those bytes, so that the block can be compared with psec's.

use std::io::Read;

use keyblock::{Header, Version, unwrap, wrap, wrap_masked};
use pinblock::ibm3624::{Ibm3624Params, offset, verify_offset};
use pinblock::pvv::{pvv, verify_pvv};
use pinblock::{Pan, Pin, SecretKey};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn unhex(s: &str) -> Res<Vec<u8>> {
    if s.len() % 2 != 0 {
        return Err("odd hex".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or("hex")?, 16).map_err(|e| e.to_string()))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn field<'a>(case: &'a Value, name: &str) -> Res<&'a str> {
    case.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {name}"))
}

fn number(case: &Value, name: &str) -> Res<u8> {
    case.get(name)
        .and_then(Value::as_u64)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| format!("missing {name}"))
}

fn one_char(case: &Value, name: &str) -> Res<char> {
    let s = field(case, name)?;
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(format!("{name}: not one character")),
    }
}

fn secret(case: &Value, name: &str) -> Res<SecretKey> {
    SecretKey::from_slice(&unhex(field(case, name)?)?).map_err(|e| e.to_string())
}

fn pan(case: &Value) -> Res<Pan> {
    Pan::new(field(case, "pan")?).map_err(|e| e.to_string())
}

fn pin(case: &Value) -> Res<Pin> {
    Pin::new(field(case, "pin")?).map_err(|e| e.to_string())
}

fn ibm_params(case: &Value) -> Res<Ibm3624Params> {
    let pad = field(case, "pad")?;
    let &[pad] = pad.as_bytes() else {
        return Err("pad: not one character".into());
    };
    Ibm3624Params::new(
        field(case, "table")?,
        number(case, "voff")?,
        number(case, "vlen")?,
        pad,
        number(case, "check")?,
    )
    .map_err(|e| e.to_string())
}

/// Gives out the bytes it was made with, then zeros.
struct Replay(Vec<u8>, usize);
impl rand_core::RngCore for Replay {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_be_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_be_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for d in dest {
            *d = self.0.get(self.1).copied().unwrap_or(0);
            self.1 += 1;
        }
    }
}
impl rand_core::CryptoRng for Replay {}

fn header(case: &Value) -> Res<Header> {
    let version = Version::try_from(one_char(case, "version")?).map_err(|e| e.to_string())?;
    let mut h = Header::new(
        version,
        field(case, "key_usage")?,
        one_char(case, "algorithm")?,
        one_char(case, "mode_of_use")?,
        field(case, "key_version")?,
        one_char(case, "exportability")?,
    )
    .map_err(|e| e.to_string())?;
    for b in case
        .get("blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = b.get(0).and_then(Value::as_str).ok_or("block id")?;
        let data = b.get(1).and_then(Value::as_str).ok_or("block data")?;
        h = h.with_optional_block(id, data).map_err(|e| e.to_string())?;
    }
    Ok(h)
}

fn run(case: &Value) -> Res<Value> {
    Ok(match field(case, "op")? {
        "pvv" => {
            let v = pvv(
                &secret(case, "pvk")?,
                &pan(case)?,
                number(case, "pvki")?,
                &pin(case)?,
            )
            .map_err(|e| e.to_string())?;
            json!(String::from_utf8_lossy(&v))
        }
        "verify_pvv" => {
            let given: [u8; 4] = field(case, "pvv")?
                .as_bytes()
                .try_into()
                .map_err(|_| "pvv: not 4 characters")?;
            json!(
                verify_pvv(
                    &secret(case, "pvk")?,
                    &pan(case)?,
                    number(case, "pvki")?,
                    &pin(case)?,
                    &given
                )
                .map_err(|e| e.to_string())?
            )
        }
        "ibm_offset" => {
            let o = offset(
                &secret(case, "pvk")?,
                &pan(case)?,
                &ibm_params(case)?,
                &pin(case)?,
            )
            .map_err(|e| e.to_string())?;
            json!(String::from_utf8_lossy(&o))
        }
        "verify_ibm" => json!(
            verify_offset(
                &secret(case, "pvk")?,
                &pan(case)?,
                &ibm_params(case)?,
                &pin(case)?,
                field(case, "offset")?.as_bytes(),
            )
            .map_err(|e| e.to_string())?
        ),
        "unwrap" => {
            let out = unwrap(&unhex(field(case, "kbpk")?)?, field(case, "block")?)
                .map_err(|e| e.to_string())?;
            let h = &out.header;
            json!({
                "version": h.version().as_char().to_string(),
                "key_usage": h.key_usage(),
                "algorithm": h.algorithm().to_string(),
                "mode_of_use": h.mode_of_use().to_string(),
                "key_version": h.key_version(),
                "exportability": h.exportability().to_string(),
                "blocks": h.optional_blocks().map(|(i, d)| json!([i, d])).collect::<Vec<_>>(),
                "key": hex(out.key.expose()),
            })
        }
        "wrap" => {
            let (kbpk, key) = (unhex(field(case, "kbpk")?)?, unhex(field(case, "key")?)?);
            let h = header(case)?;
            let masked = case.get("masked").and_then(Value::as_u64);
            let block = match (case.get("pad").and_then(Value::as_str), masked) {
                (Some(pad), m) => {
                    let m = m
                        .map_or(Ok(0), usize::try_from)
                        .map_err(|e| e.to_string())?;
                    let mut rng = Replay(unhex(pad)?, 0);
                    if case.get("masked").is_some() {
                        wrap_masked(&kbpk, &h, &key, m, &mut rng)
                    } else {
                        wrap(&kbpk, &h, &key, &mut rng)
                    }
                }
                (None, Some(m)) => {
                    let m = usize::try_from(m).map_err(|e| e.to_string())?;
                    wrap_masked(&kbpk, &h, &key, m, &mut rand::rng())
                }
                (None, None) => wrap(&kbpk, &h, &key, &mut rand::rng()),
            };
            json!(block.map_err(|e| e.to_string())?)
        }
        other => return Err(format!("unknown op {other}")),
    })
}

fn main() {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("legacy_cases: reading stdin: {e}");
        std::process::exit(2);
    }
    let cases: Vec<Value> = match serde_json::from_str(&input) {
        Ok(cases) => cases,
        Err(e) => {
            eprintln!("legacy_cases: stdin is not a JSON array: {e}");
            std::process::exit(2);
        }
    };
    let results: Vec<Value> = cases
        .iter()
        .map(|case| match run(case) {
            Ok(v) => json!({"ok": v}),
            Err(e) => json!({"err": e}),
        })
        .collect();
    println!("{}", Value::Array(results));
}
