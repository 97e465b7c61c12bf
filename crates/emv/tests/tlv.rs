#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! BER-TLV and DE 55: malformed input case by case, then properties (no input
//! panics; encode → parse round-trips; whatever parses re-encodes to itself).

use emv::tlv::{self, ARQC, ATC, ISSUER_SCRIPT_RESULTS, MAX_DEPTH, Tag, Tlv};
use emv::{IccDataError, ScriptOutcome, ScriptResult, TlvError, parse_icc_data};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn err(s: &str) -> TlvError {
    tlv::parse(&hex(s)).unwrap_err()
}

const ARQC_ATC: &str = "9F260811223344556677889F36020102";

#[test]
fn malformed_tlv_is_refused_with_the_reason() {
    use TlvError::*;
    assert_eq!(err("9F"), TruncatedTag { offset: 0 });
    assert_eq!(err("9F9F"), TruncatedTag { offset: 0 });
    assert_eq!(err("9F26"), TruncatedLength { offset: 2 });
    assert_eq!(err("9F2681"), TruncatedLength { offset: 2 });
    assert_eq!(err("9F268201"), TruncatedLength { offset: 2 });
    assert_eq!(err("9F2680"), IndefiniteLength { offset: 2 });
    assert_eq!(err("9F268300000101"), LengthTooLong { offset: 2 });
    assert_eq!(err("9F260901"), ValueOverrun { offset: 3 });
    assert_eq!(err("9F2682FFFF01"), ValueOverrun { offset: 5 });
    assert_eq!(err("00"), InvalidTag { offset: 0 });
    assert_eq!(err("FF0100"), InvalidTag { offset: 0 });
    assert_eq!(err("9F800100"), InvalidTag { offset: 0 });
    assert_eq!(err("5F81810100"), TagTooLong { offset: 0 });
    // Trailing bytes after whole TLVs: padding or garbage.
    assert_eq!(err("9F3602010200"), InvalidTag { offset: 5 });
    assert_eq!(err("9F360201029F"), TruncatedTag { offset: 5 });
    // A template whose content overruns the template (not the input).
    assert_eq!(err("72039F180400000000"), ValueOverrun { offset: 5 });
    // The same primitive twice, at the top and inside a template.
    assert_eq!(
        err("9F360201029F36020103"),
        DuplicateTag {
            tag: ATC,
            offset: 5
        }
    );
    assert_eq!(
        err("72089F1801009F180101"),
        DuplicateTag {
            tag: Tag::new(0x9F18).unwrap(),
            offset: 6
        }
    );
}

#[test]
fn what_is_accepted() {
    assert_eq!(tlv::parse(&[]).unwrap(), vec![]);
    // Long forms where the short would do (BER allows them).
    for long in ["9F3681020102", "9F368200020102"] {
        let data = hex(long);
        let items = tlv::parse(&data).unwrap();
        assert_eq!(
            items,
            vec![Tlv::Primitive {
                tag: ATC,
                value: &[1, 2]
            }]
        );
    }
    // Repeated templates, and a primitive repeated in different templates.
    let two = hex("72039F180072039F1800");
    assert_eq!(tlv::parse(&two).unwrap().len(), 2);
    // Three-byte tags.
    let data = hex("DF810101AA");
    let items = tlv::parse(&data).unwrap();
    assert_eq!(items[0].tag().raw(), 0xDF8101);
    assert_eq!(items[0].tag().to_string(), "DF8101");
}

#[test]
fn nesting_depth_is_bounded() {
    let nest = |n: usize| {
        let mut v = hex("9F1800");
        for _ in 0..n {
            let mut t = vec![0xE1, v.len() as u8];
            t.extend(v);
            v = t;
        }
        v
    };
    assert!(tlv::parse(&nest(MAX_DEPTH)).is_ok());
    assert_eq!(
        tlv::parse(&nest(MAX_DEPTH + 1)),
        Err(TlvError::TooDeep {
            offset: 2 * MAX_DEPTH
        })
    );
}

#[test]
fn tags() {
    for good in [0x01, 0x86, 0x72, 0x9F26, 0x5F34, 0xDF8101, 0xBF0C] {
        assert_eq!(Tag::new(good).unwrap().raw(), good);
    }
    for bad in [0, 0x1F, 0xFF, 0x9F80, 0x9F2601, 0x5F818181, 0x9F81] {
        assert!(Tag::new(bad).is_err(), "{bad:X}");
    }
    assert!(Tag::new(0x72).unwrap().is_constructed());
    assert!(!ARQC.is_constructed());
}

#[test]
fn encoder_refuses_what_the_parser_would() {
    let t72 = Tag::new(0x72).unwrap();
    let big = vec![0u8; 0x10000];
    assert_eq!(
        tlv::encode(&[Tlv::Primitive {
            tag: t72,
            value: &[]
        }]),
        Err(TlvError::ConstructedMismatch { tag: t72 })
    );
    assert_eq!(
        tlv::encode(&[Tlv::Constructed {
            tag: ATC,
            children: vec![]
        }]),
        Err(TlvError::ConstructedMismatch { tag: ATC })
    );
    assert_eq!(
        tlv::encode(&[Tlv::Primitive {
            tag: ATC,
            value: &big
        }]),
        Err(TlvError::ValueTooLong { tag: ATC })
    );
    let p = Tlv::Primitive {
        tag: ATC,
        value: &[1],
    };
    assert!(matches!(
        tlv::encode(&[p.clone(), p]),
        Err(TlvError::DuplicateTag { .. })
    ));
    let ok = tlv::encode(&[Tlv::Primitive {
        tag: ATC,
        value: &big[..256],
    }])
    .unwrap();
    assert_eq!(&ok[..5], &hex("9F36820100")[..]);
    let ok = tlv::encode(&[Tlv::Primitive {
        tag: ATC,
        value: &big[..128],
    }])
    .unwrap();
    assert_eq!(&ok[..4], &hex("9F368180")[..]);
}

#[test]
fn icc_data() {
    let icc = parse_icc_data(&hex(&format!("{ARQC_ATC}9F5B0A20000000011000000295"))).unwrap();
    assert_eq!(icc.arqc, [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(icc.atc, [0x01, 0x02]);
    assert_eq!(
        icc.script_results,
        vec![
            ScriptResult {
                outcome: ScriptOutcome::Successful,
                sequence: 0,
                script_id: [0, 0, 0, 1]
            },
            ScriptResult {
                outcome: ScriptOutcome::Failed,
                sequence: 0,
                script_id: [0, 0, 2, 0x95]
            },
        ]
    );
    // Other tags ignored, order free, 9F5B optional and may be empty.
    let icc = parse_icc_data(&hex("820219809F360201029F5B009F2608AABBCCDDEEFF0011")).unwrap();
    assert_eq!(icc.atc, [1, 2]);
    assert!(icc.script_results.is_empty());

    let e = |s: &str| parse_icc_data(&hex(s)).unwrap_err();
    assert_eq!(e("9F36020102"), IccDataError::Missing { tag: ARQC });
    assert_eq!(
        e("9F260811223344556677"),
        IccDataError::Tlv(TlvError::ValueOverrun { offset: 3 })
    );
    assert_eq!(
        e("9F26081122334455667788"),
        IccDataError::Missing { tag: ATC }
    );
    assert_eq!(
        e("9F2607112233445566779F36020102"),
        IccDataError::Length {
            tag: ARQC,
            found: 7
        }
    );
    assert_eq!(
        e("9F260811223344556677889F3603010203"),
        IccDataError::Length { tag: ATC, found: 3 }
    );
    assert_eq!(
        e(&format!("{ARQC_ATC}9F5B06200000000100")),
        IccDataError::Length {
            tag: ISSUER_SCRIPT_RESULTS,
            found: 6
        }
    );
    assert_eq!(
        e(&format!("{ARQC_ATC}9F5B053F00000001")),
        IccDataError::ScriptResult { found: 3 }
    );
    // Only the top level counts.
    assert_eq!(
        e("E0109F260811223344556677889F36020102"),
        IccDataError::Missing { tag: ARQC }
    );
    // A duplicate ATC is ambiguous.
    assert!(matches!(
        e(&format!("{ARQC_ATC}9F36020103")),
        IccDataError::Tlv(TlvError::DuplicateTag { .. })
    ));
}

/// An owned TLV tree for proptest; borrowed as [`Tlv`] to encode.
#[derive(Debug, Clone)]
enum Node {
    P(Tag, Vec<u8>),
    C(Tag, Vec<Node>),
}

fn as_tlv(nodes: &[Node]) -> Vec<Tlv<'_>> {
    nodes
        .iter()
        .map(|n| match n {
            Node::P(tag, value) => Tlv::Primitive { tag: *tag, value },
            Node::C(tag, children) => Tlv::Constructed {
                tag: *tag,
                children: as_tlv(children),
            },
        })
        .collect()
}

/// Drops primitive tags repeated within one level (the first stays).
fn dedup(nodes: Vec<Node>) -> Vec<Node> {
    let mut seen = std::collections::HashSet::new();
    nodes
        .into_iter()
        .filter_map(|n| match n {
            Node::P(tag, v) => seen.insert(tag).then_some(Node::P(tag, v)),
            Node::C(tag, c) => Some(Node::C(tag, dedup(c))),
        })
        .collect()
}

/// A valid tag of one to three bytes, primitive or constructed as asked.
fn tag(constructed: bool) -> impl Strategy<Value = Tag> {
    let class = any::<u8>().prop_map(move |b| (b & 0xC0) | if constructed { 0x20 } else { 0 });
    (
        class,
        0u8..3,
        1u8..=0x1E,
        1u8..=0x7F,
        0x81u8..=0xFF,
        0u8..=0x7F,
    )
        .prop_filter_map("no 00/FF first byte", |(class, len, n, b2, b2_long, b3)| {
            let raw = match len {
                0 => u32::from(class | n),
                1 => u32::from(class | 0x1F) << 8 | u32::from(b2),
                _ => (u32::from(class | 0x1F) << 16) | u32::from(b2_long) << 8 | u32::from(b3),
            };
            Tag::new(raw).ok()
        })
}

fn tree() -> impl Strategy<Value = Vec<Node>> {
    let leaf =
        (tag(false), prop::collection::vec(any::<u8>(), 0..300)).prop_map(|(t, v)| Node::P(t, v));
    let node = leaf.prop_recursive(4, 48, 6, |inner| {
        (tag(true), prop::collection::vec(inner, 0..6)).prop_map(|(t, c)| Node::C(t, c))
    });
    prop::collection::vec(node, 0..6).prop_map(dedup)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_input_panics(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_icc_data(&data);
        if let Ok(items) = tlv::parse(&data) {
            // Whatever parses re-encodes (minimal lengths) and parses the same.
            let again = tlv::encode(&items).unwrap();
            prop_assert_eq!(tlv::parse(&again).unwrap(), items);
        }
    }

    #[test]
    fn encode_then_parse_round_trips(nodes in tree()) {
        let items = as_tlv(&nodes);
        let bytes = tlv::encode(&items).unwrap();
        prop_assert_eq!(tlv::parse(&bytes).unwrap(), items);
    }

    #[test]
    fn icc_data_round_trips(
        arqc in any::<[u8; 8]>(),
        atc in any::<[u8; 2]>(),
        results in prop::collection::vec((0u8..3, 0u8..16, any::<[u8; 4]>()), 0..5),
        extra in tree(),
    ) {
        let results: Vec<ScriptResult> = results
            .into_iter()
            .map(|(r, s, id)| ScriptResult::from_bytes([r << 4 | s, id[0], id[1], id[2], id[3]]).unwrap())
            .collect();
        let packed: Vec<u8> = results.iter().flat_map(|r| r.to_bytes()).collect();
        let wanted = [ARQC, ATC, ISSUER_SCRIPT_RESULTS];
        let mut items: Vec<Tlv<'_>> = as_tlv(&extra)
            .into_iter()
            .filter(|t| !wanted.contains(&t.tag()))
            .collect();
        items.push(Tlv::Primitive { tag: ATC, value: &atc });
        items.insert(0, Tlv::Primitive { tag: ISSUER_SCRIPT_RESULTS, value: &packed });
        items.push(Tlv::Primitive { tag: ARQC, value: &arqc });
        let icc = parse_icc_data(&tlv::encode(&items).unwrap()).unwrap();
        prop_assert_eq!(icc.arqc, arqc);
        prop_assert_eq!(icc.atc, atc);
        prop_assert_eq!(icc.script_results, results);
    }
}
