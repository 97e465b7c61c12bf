//! Hexadecimal without a dependency, without panics.

use crate::Error;

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case) into `out`, returning how many bytes were written.
/// Fails on an odd length, a non-hex character, or more bytes than `out` holds.
pub fn decode_into(text: &str, out: &mut [u8]) -> Result<usize, Error> {
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return Err(Error::NotHex);
    }
    let n = bytes.len() / 2;
    if n > out.len() {
        return Err(Error::BlockLength {
            expected: out.len(),
            found: n,
        });
    }
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        match pair {
            [hi, lo] => match (nibble(*hi), nibble(*lo)) {
                (Some(h), Some(l)) => *slot = (h << 4) | l,
                _ => return Err(Error::NotHex),
            },
            _ => return Err(Error::NotHex),
        }
    }
    Ok(n)
}

/// Encodes bytes as upper-case hex.
pub fn encode_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut buf = [0u8; 4];
        assert_eq!(decode_into("0aFf", &mut buf), Ok(2));
        assert_eq!(&buf[..2], &[0x0A, 0xFF]);
        assert_eq!(encode_upper(&buf[..2]), "0AFF");
        assert_eq!(decode_into("0a0", &mut buf), Err(Error::NotHex));
        assert_eq!(decode_into("0g", &mut buf), Err(Error::NotHex));
        assert_eq!(decode_into("é0", &mut buf), Err(Error::NotHex));
        assert_eq!(
            decode_into("0011223344", &mut buf),
            Err(Error::BlockLength {
                expected: 4,
                found: 5
            })
        );
    }
}
