//! The operator command line explains itself: every command and flag has a
//! description, `programs update --help` lists every setting with the values
//! it takes and its default, and `--set` takes several pairs.

use serde_json::Value;

use crate::harness::{self, Server};

fn help(path: &[&str]) -> String {
    let out = std::process::Command::new(harness::BIN)
        .args(path)
        .arg("-h")
        .output()
        .expect("run pinvault");
    assert!(out.status.success(), "{path:?} -h failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The entries of a help section (`Commands:`, `Arguments:`, `Options:`):
/// each entry's name part and its description (empty when undescribed). The
/// description is on the entry's line after two spaces, or, when clap puts it
/// there for a wide section, on the lines below, indented further.
fn section(text: &str, title: &str) -> Vec<(String, String)> {
    let lines = text.lines().skip_while(|l| *l != title).skip(1);
    let mut out: Vec<(String, String, usize)> = Vec::new();
    for line in lines {
        if line.trim().is_empty() {
            if out.last().is_some_and(|(_, about, _)| !about.is_empty()) {
                // A blank line between described entries (next-line layout),
                // or the end of the section.
                continue;
            }
            break;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            break; // the next section's title
        }
        let entry = line.trim();
        match out.last_mut() {
            Some((_, about, at)) if indent > *at + 2 && !entry.starts_with('-') => {
                about.push_str(entry);
                continue;
            }
            _ => {}
        }
        let (name, about) = entry.split_once("  ").unwrap_or((entry, ""));
        out.push((name.trim().to_owned(), about.trim().to_owned(), indent));
    }
    out.into_iter().map(|(n, a, _)| (n, a)).collect()
}

/// `pinvault --help`, and that of every command under it, recursively: each
/// command and each argument is described.
#[test]
fn every_command_and_flag_is_described() {
    let mut queue = vec![Vec::<String>::new()];
    let mut seen = 0;
    let mut missing = Vec::new();
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let text = help(&args);
        seen += 1;
        assert!(
            !text.lines().next().unwrap_or("").trim().is_empty(),
            "pinvault {args:?} has no description"
        );
        for (name, about) in section(&text, "Commands:") {
            if name == "help" {
                continue;
            }
            if about.is_empty() {
                missing.push(format!("pinvault {} {name}", path.join(" ")));
            }
            let mut next = path.clone();
            next.push(name);
            queue.push(next);
        }
        for title in ["Arguments:", "Options:"] {
            for (name, about) in section(&text, title) {
                if about.is_empty() {
                    missing.push(format!("pinvault {} {name}", path.join(" ")));
                }
            }
        }
    }
    assert!(seen > 30, "only {seen} commands walked");
    assert!(
        missing.is_empty(),
        "without a description:\n{}",
        missing.join("\n")
    );
}

/// `programs update --help` describes the program id and `--set`, and lists
/// every setting a program has (as `programs show` prints them) with the
/// values it takes and its default, which is what a new program has.
#[test]
fn programs_update_help_lists_every_setting_with_its_default() {
    let s = Server::start("help-settings");
    let created = s.cli_json(&["programs", "create", "--name", "fresh"]);
    let id = created["program_id"].as_str().unwrap();
    let shown = s.cli_json(&["programs", "show", id]);
    let settings = shown["settings"].as_object().expect("settings");
    let text = help(&["programs", "update"]);
    let args = section(&text, "Arguments:");
    assert!(
        args.iter()
            .any(|(n, a)| *n == "<PROGRAM_ID>" && a.contains("prg_")),
        "{text}"
    );
    let opts = section(&text, "Options:");
    assert!(
        opts.iter()
            .any(|(n, a)| n.starts_with("--set") && a.contains("KEY=VALUE")),
        "{text}"
    );
    assert!(settings.len() >= 16, "{shown}");
    for (name, value) in settings {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("`{name}` is not listed:\n{text}"));
        assert!(
            line.contains(&format!("default {value}:")),
            "`{name}` (a new program has {value}): {line}"
        );
    }
    assert!(
        text.contains("max_tries") && text.contains("an integer from 1 to 10, default 3"),
        "{text}"
    );
}

/// Several KEY=VALUE after one `--set` are all applied; an unknown setting is
/// refused with the valid names, and changes nothing.
#[test]
fn set_takes_several_pairs_and_names_the_settings_on_a_typo() {
    let s = Server::start("help-set");
    let created = s.cli_json(&["programs", "create", "--name", "pairs"]);
    let id = created["program_id"].as_str().unwrap();
    let mut args = vec!["programs", "update", id, "--set"];
    args.extend(["max_tries=5", "reveal_display_s=30", "pin_set_mode=staged"]);
    let updated = s.cli_json(&args);
    assert_eq!(updated["settings"]["max_tries"], 5, "{updated}");
    assert_eq!(updated["settings"]["reveal_display_s"], 30, "{updated}");
    assert_eq!(updated["settings"]["pin_set_mode"], "staged", "{updated}");
    let out = s.cli(&[
        "programs",
        "update",
        id,
        "--set",
        "max_try=4",
        "reveal_display_s=9",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown setting `max_try`"), "{err}");
    for name in [
        "max_tries",
        "pin_length_min",
        "allow_pin_export",
        "migrate_legacy_pins",
    ] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    let shown: Value = s.cli_json(&["programs", "show", id]);
    assert_eq!(shown["settings"]["reveal_display_s"], 30, "{shown}");
}
