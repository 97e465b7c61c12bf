#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Fixed vectors. Most are from pyemv's test suite (knovichikhin/pyemv,
//! tests/test_kd_hsm.py, test_sm_hsm.py, test_cvn_hsm.py: values its author
//! checked against an HSM) and its docstrings; the two Visa CVN 22 / 18
//! vectors with a 19-digit PAN were computed with pyemv 1.5.0 (no published
//! CVN 22 example was found). Random cases against pyemv run in
//! tests/interop/emv_interop.py.

use emv::kd::{common_session_key, icc_master_key_a, icc_master_key_b, visa_session_key};
use emv::mac::retail_mac;
use emv::pin::{iso9564_format2, vis_pin_block};
use emv::sm::{Encipherment, encipher_command_data};
use emv::{Cvn, IssuerMasterKeys, Pan, Pin, Psn, ScriptContext, TdesKey, issuer_script};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn up(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn key(s: &str) -> TdesKey {
    TdesKey::from_slice(&hex(s)).unwrap()
}

fn kcv2(k: &TdesKey) -> String {
    up(&k.kcv()[..2])
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

const K0: &str = "0123456789ABCDEFFEDCBA9876543210";

#[test]
fn master_keys_option_a_and_b() {
    let imk = key(K0);
    let pan = |p: &str| Pan::new(p).unwrap();
    let psn = |p: &str| Psn::parse(p).unwrap();
    // Docstrings.
    let mk = icc_master_key_a(&imk, &pan("99012345678901234"), psn("45"));
    assert_eq!(up(mk.expose()), "67F8292358083E5EA7AB7FDA58D53B6B");
    let mk = icc_master_key_a(&imk, &pan("12345678901234567"), psn("01"));
    assert_eq!(up(mk.expose()), "73AD54688CEF2934B0979857E3C719F1");
    let mk = icc_master_key_b(&imk, &pan("12345678901234567"), psn("01"));
    assert_eq!(up(mk.expose()), "AD406D7F6D7570916D75E5DCAB8CF737");
    // HSM check digits, with the common session key for R = 1234567890123456.
    let r: [u8; 8] = arr("1234567890123456");
    for (option_b, p, s, mk_kcv, sk_kcv) in [
        (false, "12345678901234567", "45", "FF08", "DF82"),
        (false, "12345678901234567", "00", "", "3F4F"),
        (true, "1234567890123456", "00", "BAB0", "BC19"),
        (true, "12345678901234567", "45", "0BAF", "4262"),
        (true, "12345678901234567", "00", "4626", "7F36"),
        (true, "123456789012345679", "00", "C2F3", "7C35"),
    ] {
        let mk = if option_b {
            icc_master_key_b(&imk, &pan(p), psn(s))
        } else {
            icc_master_key_a(&imk, &pan(p), psn(s))
        };
        if !mk_kcv.is_empty() {
            assert_eq!(kcv2(&mk), mk_kcv, "{p} {s}");
        }
        assert_eq!(kcv2(&common_session_key(&mk, &r)), sk_kcv, "{p} {s}");
    }
    // SHA-1 with too few decimal nibbles: hex letters fill in.
    let mk = icc_master_key_b(&imk, &pan("000000000000000005"), psn("23"));
    assert_eq!(kcv2(&mk), "DD73");
    assert_eq!(
        kcv2(&common_session_key(&mk, &arr("001C000000000000"))),
        "04F8"
    );
}

#[test]
fn session_keys() {
    let mk = key(K0);
    let sk = common_session_key(&mk, &arr("001C000000000000"));
    assert_eq!(up(sk.expose()), "E9FB384AF807B940FEDCEA613461B0C4");
    let sk = visa_session_key(&mk, &[0x00, 0x1C]);
    assert_eq!(up(sk.expose()), "0123456789ABCDF2FEDCBA987654CDF2");
    // Visa: MK SMI with check digits F010, ATC 001C, then an application unblock MAC.
    let mk = icc_master_key_b(
        &key("FEDCBA98765432100123456789ABCDEF"),
        &Pan::new("1234567890123456").unwrap(),
        Psn::default(),
    );
    assert_eq!(kcv2(&mk), "F010");
    let sk = visa_session_key(&mk, &[0x00, 0x1C]);
    assert_eq!(kcv2(&sk), "DB10");
    let data = hex("8418000008001C29CCA15AE665FA2E");
    assert_eq!(up(&retail_mac(&sk, &data)), "DB56BA60087CEFD3");
}

#[test]
fn secure_messaging_hsm_examples() {
    let pan = Pan::new("1234567890123456").unwrap();
    let psn = Psn::parse("01").unwrap();
    let smi = icc_master_key_a(&key(K0), &pan, psn);
    let smc = icc_master_key_a(&key("11111111111111112222222222222222"), &pan, psn);
    let ac = icc_master_key_a(&key("FEDCBA98765432100123456789ABCDEF"), &pan, psn);
    assert_eq!(up(&smi.kcv()), "02396B");
    assert_eq!(up(&smc.kcv()), "6B0F76");
    assert_eq!(up(&ac.kcv()), "C5CACD");

    // Common session keys, MAC of a bare header.
    let r: [u8; 8] = arr("ABCDEF1234567890");
    let (sk_smi, sk_smc) = (common_session_key(&smi, &r), common_session_key(&smc, &r));
    assert_eq!(up(&sk_smi.kcv()), "F088F8");
    assert_eq!(up(&sk_smc.kcv()), "D694B8");
    assert_eq!(
        up(&retail_mac(&sk_smi, &hex("8424000008"))),
        "CF323F09A0F6AB9E"
    );

    // Mastercard: ISO 9564 format 2, CBC.
    for (pin, block, ct, mac) in [
        (
            "9999",
            "249999FFFFFFFFFF",
            "28367E05DE3381C2",
            "8C4D10091A093B5B",
        ),
        (
            "999999999999",
            "2C999999999999FF",
            "99AD3AF9EB3ECF0C",
            "1471D88C6393BE21",
        ),
    ] {
        let b = iso9564_format2(&Pin::new(pin).unwrap());
        assert_eq!(up(b.expose()), block);
        let c = encipher_command_data(&sk_smc, b.expose(), Encipherment::Mastercard).unwrap();
        assert_eq!(up(&c), ct);
        let mut data = hex("8424000210");
        data.extend_from_slice(&c);
        assert_eq!(up(&retail_mac(&sk_smi, &data)), mac);
    }

    // Visa: session keys from ATC FFFF, VIS PIN block, ECB with a length byte.
    let (sk_smi, sk_smc) = (
        visa_session_key(&smi, &[0xFF; 2]),
        visa_session_key(&smc, &[0xFF; 2]),
    );
    assert_eq!(up(&sk_smc.kcv()), "BD7C46");
    assert_eq!(up(&sk_smi.kcv()), "A41D47");
    let b = vis_pin_block(&ac, &Pin::new("9999").unwrap());
    assert_eq!(up(b.expose()), "049999FFC4B001F1");
    let c = encipher_command_data(&sk_smc, b.expose(), Encipherment::Visa).unwrap();
    assert_eq!(up(&c), "D421231A6FD2F0FAEE671384F0D3A7B9");
    let mut data = hex("8424000210");
    data.extend_from_slice(&c);
    assert_eq!(up(&retail_mac(&sk_smi, &data)), "F67E37E67B06AB99");
}

struct CardCase {
    cvn: Cvn,
    keys: [&'static str; 3],
    pan: &'static str,
    psn: &'static str,
    atc: &'static str,
    arqc: &'static str,
    pin: &'static str,
    change: &'static str,
    /// The whole template for unblock, script id 00000000 (or the MAC only).
    unblock: &'static str,
}

const HSM_KEYS: [&str; 3] = [
    K0,
    "FEDCBA98765432100123456789ABCDEF",
    "89ABCDEF0123456776543210FEDCBA98",
];

const CASES: &[CardCase] = &[
    CardCase {
        cvn: Cvn::Visa10,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "29CCA15AE665FA2E",
        pin: "9999",
        change: "8424000218BB221AF527377A2811D2B6EBC396A9391A965A5CB2CE62DA",
        unblock: "",
    },
    CardCase {
        cvn: Cvn::Visa18,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "7A788EA6B8A3E733",
        pin: "9999",
        change: "8424000218BB221AF527377A2811D2B6EBC396A9391A22B480EF312F40",
        unblock: "",
    },
    CardCase {
        // pyemv.cvn module docstring.
        cvn: Cvn::Visa18,
        keys: [
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
            "CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        ],
        pan: "1234567890123456",
        psn: "00",
        atc: "0FFF",
        arqc: "769577B5ABE9FE62",
        pin: "9999",
        change: "84240002182DC7A061323BA62472BC5308BD291B5F665B3A927E60661E",
        unblock: "",
    },
    CardCase {
        // Computed with pyemv 1.5.0 (option B with a 19-digit PAN).
        cvn: Cvn::Visa18,
        keys: HSM_KEYS,
        pan: "4761739001010010176",
        psn: "01",
        atc: "0A1B",
        arqc: "1234567890ABCDEF",
        pin: "246810",
        change: "8424000218AE17495D1BCE73DD4B1FD33EE380A8164662A925612D241D",
        unblock: "BBD13050391B782C",
    },
    CardCase {
        // Computed with pyemv 1.5.0.
        cvn: Cvn::Visa22,
        keys: HSM_KEYS,
        pan: "4761739001010010176",
        psn: "01",
        atc: "0A1B",
        arqc: "1234567890ABCDEF",
        pin: "246810",
        change: "84240002180E972CF9948773D1E77E9C7D12F71D152BC106CA5BFAFB61",
        unblock: "B44EAEA271110F4C",
    },
    CardCase {
        cvn: Cvn::Mastercard16,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "24CCF3DEE3158C70",
        pin: "9999",
        change: "842400021000859B8FE53F316DEB4B64C36BF88E39",
        unblock: "72169F180400000000860D8424000008ED0AB162BAB1DE61",
    },
    CardCase {
        cvn: Cvn::Mastercard17,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "EAE8A620A75648D8",
        pin: "9999",
        change: "84240002108661C474E4940A4378390C64CB96756E",
        unblock: "72169F180400000000860D84240000084D1858456CD0F22A",
    },
    CardCase {
        cvn: Cvn::Mastercard20,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "CD29615D6452E70E",
        pin: "9999",
        change: "84240002107647E71F85AA6A35AE4B4E838666773D",
        unblock: "72169F180400000000860D842400000801C0F0DFBF6AA230",
    },
    CardCase {
        cvn: Cvn::Mastercard21,
        keys: HSM_KEYS,
        pan: "1234567890123456",
        psn: "00",
        atc: "001C",
        arqc: "C30E54BE496CF5E5",
        pin: "9999",
        change: "8424000210D9F5896BE8E283C682264E1D32DF1D51",
        unblock: "72169F180400000000860D84240000085E89E990C51CEE94",
    },
];

#[test]
fn whole_scripts_per_cvn() {
    for case in CASES {
        let keys = IssuerMasterKeys {
            ac: key(case.keys[0]),
            smi: key(case.keys[1]),
            smc: key(case.keys[2]),
        };
        let pan = Pan::new(case.pan).unwrap();
        let ctx = ScriptContext {
            cvn: case.cvn,
            keys: &keys,
            pan: &pan,
            psn: Psn::parse(case.psn).unwrap(),
            atc: arr(case.atc),
            arqc: arr(case.arqc),
        };
        let change = ctx.change_pin(&Pin::new(case.pin).unwrap());
        assert_eq!(up(change.as_bytes()), case.change, "{}", case.cvn);
        let unblock = ctx.unblock_pin();
        match case.unblock.len() {
            0 => {}
            16 => assert_eq!(up(&unblock.as_bytes()[5..]), case.unblock, "{}", case.cvn),
            _ => assert_eq!(up(issuer_script([0; 4], &unblock).as_bytes()), case.unblock),
        }
        assert_eq!(up(&unblock.as_bytes()[..5]), "8424000008");
    }
}

#[test]
fn template_of_a_pin_change() {
    // test_cvn_hsm.py, Mastercard CVN 21: the template around the PIN CHANGE.
    let keys = IssuerMasterKeys {
        ac: key(HSM_KEYS[0]),
        smi: key(HSM_KEYS[1]),
        smc: key(HSM_KEYS[2]),
    };
    let pan = Pan::new("1234567890123456").unwrap();
    let ctx = ScriptContext {
        cvn: Cvn::Mastercard21,
        keys: &keys,
        pan: &pan,
        psn: Psn::default(),
        atc: [0x00, 0x1C],
        arqc: arr("C30E54BE496CF5E5"),
    };
    let script = issuer_script([0; 4], &ctx.change_pin(&Pin::new("9999").unwrap()));
    assert_eq!(
        up(script.as_bytes()),
        "721E9F18040000000086158424000210D9F5896BE8E283C682264E1D32DF1D51"
    );
    assert_eq!(format!("{script:?}"), "IssuerScript(<32 bytes>)");
}

#[test]
fn the_readme_worked_example() {
    // README "Chip cards": a real exchange with the server, checked with
    // pyemv 1.5.0 (MasterCardCVN16(...).generate_pin_change_command): if this
    // fails, the README's example is no longer what pinvault answers.
    let keys = IssuerMasterKeys {
        ac: key(K0),
        smi: key("11111111111111112222222222222222"),
        smc: key("33333333333333334444444444444444"),
    };
    let pan = Pan::new("5413330089020011").unwrap();
    let ctx = ScriptContext {
        cvn: Cvn::Mastercard16,
        keys: &keys,
        pan: &pan,
        psn: Psn::parse("01").unwrap(),
        atc: arr("0042"),
        arqc: arr("9A3B5C7D1E2F4A6B"),
    };
    let script = issuer_script(arr("B3560B20"), &ctx.change_pin(&Pin::new("4321").unwrap()));
    assert_eq!(
        up(script.as_bytes()),
        "721E9F1804B3560B2086158424000210B6AEBE8BA740195974A3382A3C0FCD9F"
    );
    let icc = emv::parse_icc_data(&hex(
        "9F26089A3B5C7D1E2F4A6B9F2701809F36020042950500000000009F10120110A00003220000000000000000000000FF",
    ))
    .unwrap();
    assert_eq!((icc.arqc, icc.atc), (arr("9A3B5C7D1E2F4A6B"), arr("0042")));
    let next = emv::parse_icc_data(&hex(
        "9F260811223344556677AA9F2701809F360200439F5B0520B3560B20",
    ))
    .unwrap();
    assert_eq!(next.script_results.len(), 1);
    assert_eq!(next.script_results[0].script_id, arr::<4>("B3560B20"));
    assert_eq!(
        next.script_results[0].outcome,
        emv::ScriptOutcome::Successful
    );
}
