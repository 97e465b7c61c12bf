#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failure
//! Published key blocks: X9 TR-31:2018 annex A.7 examples, blocks made by a Thales
//! payShield 10k (as openemv/tr31's tests give them) and psec's known values. Each
//! is unwrapped to its key, and wrapped again with the same pad (read out of the
//! block with psec) to the very same characters.

use keyblock::{Header, Tr31Error, Version, unwrap, wrap_masked};

struct Vector {
    source: &'static str,
    kbpk: &'static str,
    block: &'static str,
    key: &'static str,
    /// The clear payload's pad, as psec deciphers it.
    pad: &'static str,
}

const VECTORS: &[Vector] = &[
    Vector {
        source: "TR-31:2018 A.7.2.2",
        kbpk: "DD7515F2BFC17F85CE48F3CA25CB21F6",
        block: "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E",
        key: "3F419E1CB7079442AA37474C2EFBF8B8",
        pad: "1C2965473CE2",
    },
    Vector {
        source: "TR-31:2018 A.7.3.1",
        kbpk: "B8ED59E0A279A295E9F5ED7944FD06B9",
        block: "C0096B0TX12S0100KS1800604B120F9292800000BFB9B689CB567E66FC3FEE5AD5F52161FC6545B9D60989015D02155C",
        key: "EDB380DD340BC2620247D445F5B8D678",
        pad: "8546A8ED98D1",
    },
    Vector {
        source: "TR-31:2018 A.7.3.2",
        kbpk: "1D22BF32387C600AD97F9B97A51311AC",
        block: "B0104B0TX12S0100KS1800604B120F9292800000BB68BE8680A400D9191AD4ECE45B6E6C0D21C4738A52190E248719E24B433627",
        key: "E8BC63E5479455E26577F715D587FE68",
        pad: "30111D18CC4C",
    },
    Vector {
        source: "TR-31:2018 A.7.4",
        kbpk: "88E1AB2A2E3DD38C1FA039A536500CC8A87AB9D62DC92C01058FA79F44657DE6",
        block: "D0112P0AE00E0000B82679114F470F540165EDFBF7E250FCEA43F810D215F8D207E2E417C07156A27E8E31DA05F7425509593D03A457DC34",
        key: "3F419E1CB7079442AA37474C2EFBF8B8",
        pad: "1C2965473CE206BB855B01533782",
    },
    Vector {
        source: "Thales payShield 10k, version B",
        kbpk: "EFE0853B256B583D868F251CE99EA1D9",
        block: "B0080K0TN00N00001C414014375212C24995E405B5EE052CB92B67F455EA2680F6751088F9F1C228",
        key: "5DB50B454F8389ADCE573BE50861F2BF",
        pad: "F786DF9F6A54",
    },
    Vector {
        source: "Thales payShield 10k, version C",
        kbpk: "EFE0853B256B583D868F251CE99EA1D9",
        block: "C0072K0TN00N0000C9B875FF7A5316BF221C09ED52080DE0B45632A4EA9CE87699CB565E",
        key: "5DB50B454F8389ADCE573BE50861F2BF",
        pad: "345A7B73542D",
    },
    Vector {
        source: "Thales payShield 10k, version D, TDES BDK",
        kbpk: "4141414141414141414141414141414141414141414141414141414141414141",
        block: "D0112B0TN00N000037DB9B046B7B0048785690759580ABC3B9842AB4BB7717B49E92528E575785D8123559376A2553B27BE94F054F4E971C",
        key: "1FA1F7CEC798D91545DA8AE0C7796BD9",
        pad: "6B58C03B829BF4CC37B8B93C17F6",
    },
    Vector {
        source: "Thales payShield 10k, version D, AES-256 key",
        kbpk: "4141414141414141414141414141414141414141414141414141414141414141",
        block: "D0144D0AN00N0000127862F945C2DED04530FAF7CDBC8B0BA10C7AA79BD5E0C2C5D6AC173BF588E4B19ACF1357178D50EA0AB193228E13958304FC6149632DFDCADF3A5B3D57E814",
        key: "BE19E6A07A760F10EF8E83A226B63AAD141F463FDDD4F47DB244B4023EC3CACC",
        pad: "295FF17ED49FA896A5D945C176B7",
    },
    Vector {
        source: "psec known values, B, single-length key masked",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB",
        block: "B0096M3TC00E0000B6CD513680EF255FC0DC590726FD0129A7CF6602E7F271631AB4EE7350642F11181AF4CC12F12FD9",
        key: "EEEEEEEEEEEEEEEE",
        pad: "CE6B91C03D1766F850598095408D6377000000000000",
    },
    Vector {
        source: "psec known values, C, single-length key masked",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB",
        block: "C0088M3TC00E0000A53CF172FE6562E7FDD5E6482E8925DA46F7FFE4D1BAD49EB33A9EDBB96A8A8D39F13A31",
        key: "EEEEEEEEEEEEEEEE",
        pad: "A7C50341DC881B534BDA4D24D5AE513C000000000000",
    },
    Vector {
        source: "psec known values, B",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB",
        block: "B0096M3TC00E0000D578DACC2286C7D10F20DEA88799CA8A2F44E0CC21226A2158D5DC8FD5C78E621327DA956C678808",
        key: "CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD",
        pad: "C0E25D146D4AA03856CBAA622745",
    },
    Vector {
        source: "psec known values, C",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBB",
        block: "C0088M3TC00E00009BC6306FC31891BF87B3148463627B1D68C603D9FAB9074E4A0D2E78D40B29905A826F5C",
        key: "CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD",
        pad: "7CF379B0EA7F353F90C5E79DB3C9",
    },
    Vector {
        source: "psec known values, B, triple-length KBPK",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCC",
        block: "B0096M3TC00E0000C7C6FE86A5DE769C20DCA238C52341378B484D544A9764D43963C3B2824AE56C2D07A565DD3AB342",
        key: "CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD",
        pad: "67721C547A42EDD81F0B95E5BD7E",
    },
    Vector {
        source: "psec known values, C, triple-length KBPK",
        kbpk: "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCC",
        block: "C0088M3TC00E000091FA4978279FD9C218BDCBE9CC62F11A182F828406B67AC61B5573748FCF348FD59FA93A",
        key: "CCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD",
        pad: "6A031EB415860472A30269D70034",
    },
    Vector {
        source: "psec known values, B with a KS block and key version",
        kbpk: "89E88CF7931444F334BD7547FC3F380C",
        block: "B0120P0TE12E0100KS1800604B120F9292800000E6E28F097CB0350B2EB2DF520947F779FA34D9759CEE7E0DEEACF8353DB778D47FA4EC20DA3A9754",
        key: "F039121BEC83D26B169BDCD5B22AAF8F",
        pad: "DC816D64184597216FC4A3398558",
    },
];

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Gives out the bytes it was made with, then zeros.
struct Replay(Vec<u8>);
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
            *d = if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            };
        }
    }
}
impl rand_core::CryptoRng for Replay {}

#[test]
fn published_blocks_unwrap_and_wrap_again() {
    for v in VECTORS {
        let kbpk = unhex(v.kbpk);
        let out = unwrap(&kbpk, v.block).unwrap_or_else(|e| panic!("{}: {e}", v.source));
        assert_eq!(out.key.expose(), unhex(v.key), "{}", v.source);
        // The pad the block holds, and the masked length that gives that much of it.
        let (key, pad) = (unhex(v.key), unhex(v.pad));
        let bs = if v.block.starts_with('D') { 16 } else { 8 };
        let payload = 2 + key.len() + pad.len();
        let pad_len = match (payload - 2 - key.len()) % bs {
            0 => bs,
            r => r,
        };
        let masked = payload - 2 - pad_len;
        let again = wrap_masked(&kbpk, &out.header, &key, masked, &mut Replay(pad)).unwrap();
        assert_eq!(again, v.block, "{}", v.source);
    }
}

#[test]
fn published_headers() {
    let v = &VECTORS[1];
    let h = unwrap(&unhex(v.kbpk), v.block).unwrap().header;
    assert_eq!(h.version(), Version::C);
    assert_eq!(
        (h.key_usage(), h.algorithm(), h.mode_of_use()),
        ("B0", 'T', 'X')
    );
    assert_eq!((h.key_version(), h.exportability()), ("12", 'S'));
    assert_eq!(
        h.optional_blocks().collect::<Vec<_>>(),
        [("KS", "00604B120F9292800000")]
    );
    let v = &VECTORS[3];
    let h = unwrap(&unhex(v.kbpk), v.block).unwrap().header;
    assert_eq!(
        h,
        Header::new(Version::D, "P0", 'A', 'E', "00", 'E').unwrap()
    );
}

#[test]
fn psec_refusals() {
    // psec's unwrap error cases (KBPK b"E" * 16), each refused here too.
    let kbpk = [b'E'; 16];
    for (block, want) in [
        (
            "B0040P0TE00N0000",
            Tr31Error::Length {
                declared: 40,
                actual: 16,
            },
        ),
        (
            "BX040P0TE00N0000",
            Tr31Error::Malformed("length field is not 4 decimal digits"),
        ),
        (
            "A0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF354468910379AA5BBA6",
            Tr31Error::UnsupportedVersion('A'),
        ),
        (
            "B0024M3TC00E00009AA5BBA6",
            Tr31Error::Malformed("no room for the MAC"),
        ),
        (
            "B0032M3TC00E0000FFFFFFFF9AA5BBA6",
            Tr31Error::Malformed("encrypted payload is not a whole number of cipher blocks"),
        ),
        (
            "C0024M3TC00E00009AA5BBA6",
            Tr31Error::Malformed("encrypted payload is not a whole number of cipher blocks"),
        ),
        (
            "B0064M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBFFFFFFFF9AA5BBA6",
            Tr31Error::BadMac,
        ),
        (
            "C0056M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB9AA5BBA6",
            Tr31Error::BadMac,
        ),
        // The MAC matches, the key length field is 0 bits / 128 bits in 64.
        (
            "B0064M3TC00E000013F1B06566ECAE897A6DF8C7AA651FCEF9480447EEEC9933",
            Tr31Error::KeyLength,
        ),
        (
            "C0056M3TC00E0000629D73329F5F42D868B2EB1E4C52D1E191BC1D3C",
            Tr31Error::KeyLength,
        ),
        (
            "B0064M3TC00E00000398DC96A5DDB0EF61E26F8935173BD478DF9484050A672A",
            Tr31Error::KeyLength,
        ),
        (
            "C0056M3TC00E000001235EC22408B6CE866746FF992B8707FD7A26D2",
            Tr31Error::KeyLength,
        ),
        (
            "C0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF3544689103X9AA5BBA6",
            Tr31Error::Malformed("payload or MAC is not upper-case hex"),
        ),
        (
            "C0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF354468910379AA5BBAX",
            Tr31Error::Malformed("payload or MAC is not upper-case hex"),
        ),
    ] {
        assert_eq!(unwrap(&kbpk, block).unwrap_err(), want, "{block}");
    }
    let b =
        "B0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF354468910379AA5BBA6";
    assert_eq!(
        unwrap(&[b'E'; 8], b).unwrap_err(),
        Tr31Error::KbpkLength {
            version: 'B',
            found: 8
        }
    );
    assert_eq!(
        unwrap(&[b'E'; 32], b).unwrap_err(),
        Tr31Error::KbpkLength {
            version: 'B',
            found: 32
        }
    );
    // Lower-case hex is refused (psec would read it; one spelling per block here).
    let v = &VECTORS[0];
    let lower = format!("{}{}", &v.block[..16], v.block[16..].to_lowercase());
    assert!(matches!(
        unwrap(&unhex(v.kbpk), &lower),
        Err(Tr31Error::Malformed(_))
    ));
}

#[test]
fn wrong_kbpk_is_a_bad_mac() {
    for v in VECTORS {
        let mut kbpk = unhex(v.kbpk);
        kbpk[3] ^= 0x10;
        assert_eq!(
            unwrap(&kbpk, v.block).unwrap_err(),
            Tr31Error::BadMac,
            "{}",
            v.source
        );
    }
}

#[test]
fn nothing_secret_prints() {
    let v = &VECTORS[0];
    let out = unwrap(&unhex(v.kbpk), v.block).unwrap();
    let shown = format!("{out:?} {:?}", out.key);
    assert!(
        !shown.contains("3F41") && !shown.contains("3f41"),
        "{shown}"
    );
    assert!(shown.contains("redacted"), "{shown}");
}
