//! The little DER the service reads itself: one element at a time (an RSA
//! public key's `SEQUENCE { INTEGER n, INTEGER e }`, a certificate's outline
//! for its signature algorithm). Definite lengths of up to four bytes.

/// One DER element of `tag` at the start of `input`: its contents and what
/// follows it; `None` for another tag or a length past the end.
pub fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = if len < 0x80 {
        (usize::from(len), rest)
    } else {
        let n = usize::from(len & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::element;

    #[test]
    fn short_and_long_lengths_and_refusals() {
        assert_eq!(
            element(&[0x02, 0x01, 0x05, 0xff], 0x02),
            Some((&[0x05][..], &[0xff][..]))
        );
        let long = [&[0x04, 0x81, 0x80][..], &[7u8; 0x80]].concat();
        assert_eq!(
            element(&long, 0x04).map(|(c, r)| (c.len(), r.len())),
            Some((0x80, 0))
        );
        assert_eq!(element(&[0x02, 0x01, 0x05], 0x30), None);
        assert_eq!(element(&[0x02, 0x02, 0x05], 0x02), None);
        assert_eq!(element(&[0x02, 0x80], 0x02), None);
        assert_eq!(element(&[0x02, 0x85, 1, 1, 1, 1, 1], 0x02), None);
        assert_eq!(element(&[], 0x02), None);
    }
}
