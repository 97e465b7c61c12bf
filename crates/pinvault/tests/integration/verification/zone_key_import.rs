//! Zone key import: checks, and the key is never shown.

use crate::harness::Server;

use super::support::*;

/// Zone keys: components XORed, the KCV printed and checked, the key never
/// shown, listed or stored in clear.
#[test]
fn zone_key_import_checks_and_hides_the_key() {
    let s = Server::start("verify-zpk");
    let key = s.program("live", SETTINGS);
    let program = s.program_of(&key);
    // 0123456789ABCDEF FEDCBA9876543210 (published KCV 08D7B4) in two components.
    let c1 = "11111111111111111111111111111111";
    let c2 = "1032547698BADCFEEFCDAB8967452301";
    let out = s.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &program,
        "--name",
        "acquirer A",
        "--algorithm",
        "tdes",
        "--component",
        c1,
        "--component",
        c2,
        "--kcv",
        "08D7B4",
    ]);
    assert_eq!(out["kcv"], "08D7B4", "{out}");
    let id = out["zone_key_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("zpk_"));
    assert_eq!(out.as_object().unwrap().len(), 2, "{out}");

    // A wrong KCV is refused and stores nothing.
    let bad = s.cli(&[
        "zone-keys",
        "import",
        "--program",
        &program,
        "--name",
        "wrong",
        "--algorithm",
        "tdes",
        "--component",
        c2,
        "--kcv",
        "08D7B4",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("check value"), "{err}");
    for (alg, comp) in [("aes256", c1), ("tdes", "0011"), ("aes128", "nothex")] {
        let r = s.cli(&[
            "zone-keys",
            "import",
            "--program",
            &program,
            "--name",
            "x",
            "--algorithm",
            alg,
            "--component",
            comp,
        ]);
        assert!(!r.status.success(), "{alg} {comp}");
        assert!(!String::from_utf8_lossy(&r.stderr).contains(comp) || comp == "0011");
    }
    // AES components and the AES KCV (CMAC of zeros): 000102…0F is BE7ED6.
    let aes = s.cli_json(&[
        "zone-keys",
        "import",
        "--program",
        &program,
        "--name",
        "acquirer B",
        "--algorithm",
        "aes128",
        "--component",
        "000102030405060708090A0B0C0D0E0F",
        "--kcv",
        "be7ed6",
    ]);
    assert_eq!(aes["kcv"], "BE7ED6");

    let list = s.get("/v1/zone-keys", &key);
    assert_eq!(list.status, 200, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{}", list.body);
    assert_eq!(data[1]["id"], id.as_str());
    assert_eq!(data[1]["name"], "acquirer A");
    assert_eq!(data[1]["algorithm"], "tdes");
    assert_eq!(data[1]["kcv"], "08D7B4");
    assert_eq!(data[0]["algorithm"], "aes128");
    let page = s.get("/v1/zone-keys?limit=1", &key).body;
    assert_eq!(page["has_more"], true);
    let next = s
        .get(
            &format!(
                "/v1/zone-keys?limit=1&starting_after={}",
                page["data"][0]["id"].as_str().unwrap()
            ),
            &key,
        )
        .body;
    assert_eq!(next["data"][0]["id"], id.as_str());
    assert_eq!(next["has_more"], false);
    let listed = s.cli_json(&["zone-keys", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // No key material anywhere: listings, the log, the data directory.
    let clear = [
        "0123456789ABCDEFFEDCBA9876543210",
        "000102030405060708090A0B0C0D0E0F",
        c1,
        c2,
    ];
    let everything = format!("{}{}{}", list.body, listed, s.logs());
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&s.data_dir).unwrap() {
        let path = entry.unwrap().path();
        files.push(std::fs::read(&path).unwrap());
    }
    // PostgreSQL: every row as text, byte columns in hex.
    let dump = s.data.database_dump().unwrap_or_default().to_uppercase();
    for (i, k) in clear.iter().enumerate() {
        assert!(!everything.to_uppercase().contains(k), "key #{i} shown");
        assert!(!dump.contains(k), "key #{i} stored in clear");
        let bytes: Vec<u8> = (0..k.len() / 2)
            .map(|j| u8::from_str_radix(&k[2 * j..2 * j + 2], 16).unwrap())
            .collect();
        for f in &files {
            assert!(
                !f.windows(bytes.len()).any(|w| w == bytes.as_slice()),
                "key #{i} stored in clear"
            );
        }
    }
}
