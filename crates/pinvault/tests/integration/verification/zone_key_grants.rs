//! Zone keys belong to the programs they are granted to (API.md "PIN
//! verification", v1.1): another program's key is 404 as a missing one, a
//! test program cannot use a live program's key, an `export` key is refused
//! at verification, grants and revokes take effect on a running server, and a
//! key from before grants serves every program until it is granted.

use serde_json::Value;

use crate::harness::Server;

use super::support::*;

fn grant(s: &Server, verb: &str, zpk: &str, program: &str) -> Value {
    s.cli_json(&["zone-keys", verb, zpk, "--program", program])
}

fn listed(s: &Server, key: &str) -> Vec<Value> {
    let r = s.get("/v1/zone-keys", key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

fn cli_listed(s: &Server, zpk: &str) -> Value {
    let all = s.cli_json(&["zone-keys", "list"]);
    all.as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == zpk)
        .cloned()
        .unwrap_or_else(|| panic!("{zpk} not in {all}"))
}

#[test]
fn a_zone_key_serves_only_the_programs_it_is_granted_to() {
    let s = Server::start("verify-grants");
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let a = s.program("live", SETTINGS);
    let b = s.program("live", SETTINGS);
    let t = s.program("test", SETTINGS);
    let (pa, pb, pt) = (s.program_of(&a), s.program_of(&b), s.program_of(&t));
    let zpk = import(&s, &a, algorithm(&v), &[&v.key]);
    let ca = card(&s, &a, &v.pan, &v.pin);
    let cb = card(&s, &b, &v.pan, &v.pin);
    let ct = card(&s, &t, &v.pan, &v.pin);
    let try_block =
        |key: &str, card: &str, zpk: &str| verify(&s, key, card, &v.format, &v.enciphered, zpk);

    assert_eq!(outcome(&try_block(&a, &ca, &zpk)), ("match".into(), 3));
    // Another program (live or test), with a card of the same PAN: exactly the
    // answer for a key that does not exist, and nothing counted.
    for (key, card) in [(&b, &cb), (&t, &ct)] {
        let r = try_block(key, card, &zpk);
        assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
        let missing = try_block(key, card, "zpk_aaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            r.body["detail"], missing.body["detail"],
            "no oracle on existence"
        );
        assert_eq!(fail_count(&s, key, card), 0);
    }
    // Each program lists only the keys it may use.
    let mine = listed(&s, &a);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], zpk.as_str());
    assert_eq!(mine[0]["usage"], "verify");
    assert!(
        mine[0].get("programs").is_none(),
        "grants are the operator's: {}",
        mine[0]
    );
    assert!(listed(&s, &b).is_empty());
    assert!(listed(&s, &t).is_empty());
    let r = s.get(&format!("/v1/zone-keys?starting_after={zpk}"), &b);
    assert_eq!(
        r.status, 400,
        "another program's key is no cursor: {}",
        r.body
    );

    // A key of usage `export` is refused at verification, and counts nothing.
    let mut args = vec![
        "zone-keys",
        "import",
        "--name",
        "out",
        "--algorithm",
        algorithm(&v),
        "--component",
        &v.key,
        "--program",
        &pa,
        "--usage",
        "export",
    ];
    let export = s.cli_json(&args)["zone_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = try_block(&a, &ca, &export);
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
    assert_eq!(fail_count(&s, &a, &ca), 0);
    assert_eq!(listed(&s, &a)[0]["usage"], "export");
    assert_eq!(cli_listed(&s, &export)["usage"], "export");
    // A usage that does not exist, a program that does not exist, no program.
    let last = args.len() - 1;
    args[last] = "both";
    assert!(!s.cli(&args).status.success());
    let unknown = s.cli(&[
        "zone-keys",
        "import",
        "--name",
        "x",
        "--algorithm",
        "aes128",
        "--component",
        "000102030405060708090A0B0C0D0E0F",
        "--program",
        "prg_aaaaaaaaaaaaaaaaaaaaaaaa",
    ]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no program"));
    let none = s.cli(&[
        "zone-keys",
        "import",
        "--name",
        "x",
        "--algorithm",
        "aes128",
        "--component",
        "000102030405060708090A0B0C0D0E0F",
    ]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--program"));

    // Grants take effect on the running server when the command returns.
    let after = grant(&s, "grant", &zpk, &pt);
    let mut both = vec![pa.clone(), pt.clone()];
    both.sort();
    assert_eq!(after["programs"], serde_json::json!(both), "{after}");
    assert_eq!(outcome(&try_block(&t, &ct, &zpk)), ("match".into(), 3));
    grant(&s, "revoke", &zpk, &pa);
    let r = try_block(&a, &ca, &zpk);
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    assert_eq!(outcome(&try_block(&t, &ct, &zpk)), ("match".into(), 3));
    let again = s.cli(&["zone-keys", "revoke", &zpk, "--program", &pa]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not granted"));
    assert_eq!(
        cli_listed(&s, &zpk)["programs"],
        serde_json::json!([pt.clone()])
    );

    let audit = s.cli_json(&["audit", "list", "--limit", "1000"]);
    let actions = crate::harness::each(&audit, "action");
    for want in ["zone_key.imported", "zone_key.granted", "zone_key.revoked"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let _ = pb;
}

/// A key imported before grants (as an upgrade leaves it) serves every
/// program, says so at start and in `zone-keys list`, cannot be revoked, and
/// its first grant makes it that program's only.
#[test]
fn a_key_from_before_grants_serves_every_program_until_granted() {
    let mut s = Server::start("verify-grants-all");
    let v = vectors().into_iter().find(|v| v.format == "iso_4").unwrap();
    let a = s.program("live", SETTINGS);
    let b = s.program("test", SETTINGS);
    let zpk = import(&s, &a, algorithm(&v), &[&v.key]);
    // What the v1.1 migration makes of a key imported before it.
    write_directly(
        &s,
        &format!(
            "UPDATE zone_keys SET all_programs = TRUE WHERE id = '{zpk}';
             DELETE FROM zone_key_grants WHERE zone_key_id = '{zpk}';"
        ),
    );
    s.stop();
    let s = s.another_node();
    assert!(
        s.logs().contains(&zpk) && s.logs().contains("every program"),
        "the start says so: {}",
        s.logs()
    );
    assert_eq!(cli_listed(&s, &zpk)["programs"], "all");
    let ca = card(&s, &a, &v.pan, &v.pin);
    let cb = card(&s, &b, &v.pan, &v.pin);
    for (key, card) in [(&a, &ca), (&b, &cb)] {
        let r = verify(&s, key, card, &v.format, &v.enciphered, &zpk);
        assert_eq!(outcome(&r), ("match".into(), 3));
        assert_eq!(listed(&s, key).len(), 1);
    }
    let refused = s.cli(&["zone-keys", "revoke", &zpk, "--program", &s.program_of(&a)]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("every program"));
    let after = grant(&s, "grant", &zpk, &s.program_of(&b));
    assert_eq!(after["programs"], serde_json::json!([s.program_of(&b)]));
    let r = verify(&s, &a, &ca, &v.format, &v.enciphered, &zpk);
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
    let r = verify(&s, &b, &cb, &v.format, &v.enciphered, &zpk);
    assert_eq!(outcome(&r), ("match".into(), 3));
}
