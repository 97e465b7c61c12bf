//! Operator commands against a server's data directory and database.

use std::process::Output;

use serde_json::Value;

use super::server::Server;

impl Server {
    /// Runs an operator command against this server's data directory and database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.data
            .command(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run pinvault")
    }

    /// As [`Server::cli`], with `input` on standard input (for `-` arguments).
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .data
            .command(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run pinvault");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("run pinvault")
    }

    pub fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "pinvault {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON on stdout")
    }

    /// A new program with these settings (`key=value`); returns its API key.
    pub fn program(&self, mode: &str, settings: &[&str]) -> String {
        let created = self.cli_json(&["programs", "create", "--name", "test", "--mode", mode]);
        let id = created["program_id"].as_str().unwrap().to_owned();
        if !settings.is_empty() {
            let mut args = vec!["programs", "update", &id];
            for s in settings {
                args.push("--set");
                args.push(s);
            }
            self.cli_json(&args);
        }
        let key = created["api_key"].as_str().unwrap().to_owned();
        self.data.programs.lock().unwrap().insert(key.clone(), id);
        key
    }

    /// The program (`prg_…`) of an API key made by [`Server::program`].
    pub fn program_of(&self, api_key: &str) -> String {
        self.data.programs.lock().unwrap()[api_key].clone()
    }
}
