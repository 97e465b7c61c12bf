//! Fuzzes the BER-TLV reader of DE 55 (the emv crate): any bytes as TLV and as
//! ICC data. A panic is a bug; so is a parse that does not re-encode to itself,
//! or an ICC data read that disagrees with the tree it came from.
#![no_main]

use emv::tlv::{self, Tlv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let icc = emv::parse_icc_data(data);
    match tlv::parse(data) {
        Ok(items) => {
            let again = tlv::encode(&items).expect("a parsed tree encodes");
            assert_eq!(tlv::parse(&again).expect("its encoding parses"), items);
            // Minimal lengths: never longer than the input.
            assert!(again.len() <= data.len());
            if let Ok(icc) = icc {
                let arqc = items.iter().any(|t| {
                    matches!(t, Tlv::Primitive { tag, value } if *tag == tlv::ARQC && *value == icc.arqc)
                });
                assert!(arqc, "the ARQC read is the top-level 9F26");
            }
        }
        Err(_) => assert!(icc.is_err(), "ICC data read from malformed TLV"),
    }
});
