#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Properties of the scripts for any keys, card and transaction: the shape of
//! each command per CVN, the template around it, and that the MAC covers what
//! it should (pyemv checks the values: tests/interop/emv_interop.py).

use emv::kd::{icc_master_key_a, icc_master_key_b};
use emv::tlv::{self, Tlv};
use emv::{Cvn, IssuerMasterKeys, Pan, Pin, Psn, ScriptContext, TdesKey, issuer_script};
use proptest::prelude::*;

fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(0u8..10, min..=max)
        .prop_map(|d| d.into_iter().map(|d| char::from(b'0' + d)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn scripts_have_the_right_shape(
        k in any::<[[u8; 16]; 3]>(),
        pan in digits(1, 19),
        psn in 0u8..100,
        atc in any::<[u8; 2]>(),
        arqc in any::<[u8; 8]>(),
        pin in digits(4, 12),
        id in any::<[u8; 4]>(),
    ) {
        let keys = IssuerMasterKeys {
            ac: TdesKey::new(k[0]),
            smi: TdesKey::new(k[1]),
            smc: TdesKey::new(k[2]),
        };
        let pan = Pan::new(&pan).unwrap();
        let psn = Psn::parse(&format!("{psn:02}")).unwrap();
        let pin = Pin::new(&pin).unwrap();
        for cvn in Cvn::ALL {
            let ctx = ScriptContext { cvn, keys: &keys, pan: &pan, psn, atc, arqc };
            let change = ctx.change_pin(&pin);
            let visa = matches!(cvn, Cvn::Visa10 | Cvn::Visa18 | Cvn::Visa22);
            let lc: u8 = if visa { 24 } else { 16 };
            prop_assert_eq!(&change.as_bytes()[..5], &[0x84, 0x24, 0x00, 0x02, lc]);
            prop_assert_eq!(change.as_bytes().len(), 5 + usize::from(lc));
            let unblock = ctx.unblock_pin();
            prop_assert_eq!(&unblock.as_bytes()[..5], &[0x84, 0x24, 0x00, 0x00, 0x08]);
            prop_assert_eq!(unblock.as_bytes().len(), 13);
            // Another ARQC changes the MAC (it is in the MAC input for every
            // CVN, and the session key for the common derivation).
            let mut other = arqc;
            other[7] ^= 1;
            let ctx2 = ScriptContext { arqc: other, ..ctx };
            let unblock2 = ctx2.unblock_pin();
            prop_assert_ne!(unblock2.as_bytes(), unblock.as_bytes());

            let script = issuer_script(id, &change);
            let items = tlv::parse(script.as_bytes()).unwrap();
            let Tlv::Constructed { tag, children } = &items[0] else { panic!("not a template") };
            prop_assert_eq!(tag.raw(), 0x72);
            prop_assert_eq!(children, &vec![
                Tlv::Primitive { tag: tlv::ISSUER_SCRIPT_ID, value: &id },
                Tlv::Primitive { tag: tlv::ISSUER_SCRIPT_COMMAND, value: change.as_bytes() },
            ]);
        }
        // Option B is option A up to 16 PAN digits, and differs beyond.
        let a = icc_master_key_a(&keys.ac, &pan, psn);
        let b = icc_master_key_b(&keys.ac, &pan, psn);
        prop_assert_eq!(a.expose() == b.expose(), pan.len() <= 16);
        prop_assert!(a.expose().iter().all(|b| b.count_ones() % 2 == 1));
    }
}
