//! The header parser and encoder against psec's test suite and on malformed input.

use super::*;

fn parse(s: &str) -> Result<Header, Tr31Error> {
    Header::parse(s).map(|(h, _)| h)
}

#[test]
fn fixed_fields() {
    let (h, len) = Header::parse("B0016P0TE00N0000").unwrap();
    assert_eq!(len, 16);
    assert_eq!(
        (h.version(), h.key_usage(), h.algorithm(), h.mode_of_use()),
        (Version::B, "P0", 'T', 'E')
    );
    assert_eq!((h.key_version(), h.exportability()), ("00", 'N'));
    assert_eq!(h.optional_blocks().count(), 0);
    assert_eq!(
        h,
        Header::new(Version::B, "P0", 'T', 'E', "00", 'N').unwrap()
    );
}

#[test]
fn optional_blocks_as_psec_reads_them() {
    // psec's test suite: one block, a pad block, an extended length, several.
    let h = parse("B0040P0TE00N0100KS1800604B120F9292800000").unwrap();
    assert_eq!(h.optional_block("KS"), Some("00604B120F9292800000"));
    let h = parse("B0040P0TE00N0200KS1200604B120F9292PB0600").unwrap();
    assert_eq!(
        h.optional_blocks().collect::<Vec<_>>(),
        [("KS", "00604B120F9292")]
    );
    let long = format!("B0288P0TE00N0200KS0002010A{}PB0600", "P".repeat(256));
    assert_eq!(
        parse(&long).unwrap().optional_block("KS"),
        Some(&*"P".repeat(256))
    );
    let h = parse("B0048P0TE00N0200KS00011600604B120F9292PB0A000000").unwrap();
    assert_eq!(h.optional_block("KS"), Some("00604B120F9292"));
    let h = parse("B0056P0TE00N0400KS1800604B120F9292800000T104T20600PB0600").unwrap();
    assert_eq!(
        h.optional_blocks().collect::<Vec<_>>(),
        [("KS", "00604B120F9292800000"), ("T1", ""), ("T2", "00")]
    );
}

#[test]
fn encodes_as_psec_does() {
    let h = Header::new(Version::B, "P0", 'T', 'E', "00", 'N').unwrap();
    assert_eq!(h.encode(0).unwrap(), "B0016P0TE00N0000");
    let h = h.with_optional_block("KS", "00604B120F9292").unwrap();
    assert_eq!(
        h.encode(0).unwrap(),
        "B0040P0TE00N0200KS1200604B120F9292PB0600"
    );
    let h = Header::new(Version::B, "P0", 'T', 'E', "00", 'N')
        .unwrap()
        .with_optional_block("TT", "HelloWorld")
        .unwrap();
    assert_eq!(
        h.encode(80).unwrap(),
        "B0120P0TE00N0200TT0EHelloWorldPB0A000000"
    );
    let h = Header::new(Version::B, "P0", 'T', 'E', "00", 'N')
        .unwrap()
        .with_optional_block("KS", &"P".repeat(256))
        .unwrap();
    let text = h.encode(0).unwrap();
    assert_eq!(
        text,
        format!("B0288P0TE00N0200KS0002010A{}PB0600", "P".repeat(256))
    );
    assert_eq!(parse(&text).unwrap(), h);
}

#[test]
fn refusals() {
    // The length field is set to each string's length, so that what is
    // refused is the part under test.
    let malformed = |s: &str| {
        let s = format!("{}{:04}{}", &s[..1], s.len(), &s[5..]);
        match parse(&s) {
            Err(Tr31Error::Malformed(_) | Tr31Error::NotAscii) => {}
            other => panic!("{s}: {other:?}"),
        }
    };
    for s in [
        "B0000P0TE00N0100",
        "B0000P0TE00N0100K",
        "B0000P0TE00N0100KS1Y",
        "B0000P0TE00N0100KS02",
        "B0000P0TE00N0100KS071",
        "B0000P0TE00N0100KS0000",
        "B0000P0TE00N0100KS0001FF",
        "B0000P0TE00N0100**04",
        "B0000P0TE00N0100KS04TT04",
        "B0000P0TE00N0200KS04KS04",
        "B0000P0TE00N0200PB04KS04",
        "B0000P0TE00N0100KS08\u{7}abc",
        "B0000P0TE00N0X00",
        "B0000P0TE00N0001",
        "B0000P_TE00N0000",
        "B0000P0TE0 N0000",
        "B0000P0TE00N0100KS04",
        "B0000P0TE00N0100KS0c0000",
        "B0000P0TE00N0100KS0005000000000000",
    ] {
        malformed(s);
    }
    assert_eq!(
        parse("A0016P0TE00N0000"),
        Err(Tr31Error::UnsupportedVersion('A'))
    );
    assert_eq!(
        parse("B0017P0TE00N0000"),
        Err(Tr31Error::Length {
            declared: 17,
            actual: 16
        })
    );
    assert!(parse("B001").is_err());
    let h = Header::new(Version::D, "P0", 'A', 'E', "00", 'N').unwrap();
    assert!(h.clone().with_optional_block("PB", "00").is_err());
    assert!(h.clone().with_optional_block("K", "00").is_err());
    assert!(h.clone().with_optional_block("KS", "\n").is_err());
    let h = h.with_optional_block("KS", "1").unwrap();
    assert!(h.with_optional_block("KS", "2").is_err());
    assert!(Header::new(Version::B, "P", 'T', 'E', "00", 'N').is_err());
    assert!(Header::new(Version::B, "P0", 'é', 'E', "00", 'N').is_err());
    assert!(Header::new(Version::B, "P0", 'T', '_', "00", 'N').is_err());
    assert!(Header::new(Version::B, "P0", 'T', 'E', "0", 'N').is_err());
    assert!(Header::new(Version::B, "P0", 'T', 'E', "00", ' ').is_err());
}
