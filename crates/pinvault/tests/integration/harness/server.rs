//! A `pinvault serve` process on port 0: starting it (on a fresh or shared
//! data directory, with extra environment), its log, and stopping it. Dropping
//! a server stops it and checks its leak canaries (see `canaries`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::data_dir::{DataDir, fresh_dir};
use super::pkcs11::init_key_provider;

pub struct Server {
    pub(super) child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub data: Arc<DataDir>,
    pub(super) stderr: Arc<Mutex<String>>,
    pub(super) agent: ureq::Agent,
    /// Environment given to the server and to operator commands.
    pub(super) env: Vec<(String, String)>,
    /// Leak canaries: every PAN and every long PIN sent (see [`Server::leaks`]).
    pub(super) canaries: Arc<Mutex<std::collections::BTreeSet<String>>>,
}

impl Server {
    pub fn start(tag: &str) -> Server {
        Self::start_in(fresh_dir(tag))
    }

    /// Another server (node) on the same data directory and database.
    pub fn another_node(&self) -> Server {
        Self::start_with(self.data.clone(), self.env.clone())
    }

    pub fn start_in(data: Arc<DataDir>) -> Server {
        if !data.path.exists() {
            init_key_provider(&data, &[]);
        }
        Self::start_with(data, Vec::new())
    }

    /// A server on a fresh data directory with extra environment (also given
    /// to its operator commands).
    pub fn start_env(tag: &str, env: &[(&str, &str)]) -> Server {
        let data = fresh_dir(tag);
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        init_key_provider(&data, &env);
        Self::start_with(data, env)
    }

    /// A server with extra environment (also given to its operator commands;
    /// `PINVAULT_DATABASE_URL` there overrides the data directory's database).
    pub fn start_with(data: Arc<DataDir>, env: Vec<(String, String)>) -> Server {
        let mut child = data
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env("PINVAULT_LOG", "debug")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pinvault serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(base) = line.strip_prefix("pinvault listening on ") {
                    let _ = tx.send(base.to_owned());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {}", stderr.lock().unwrap());
            }
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Server {
            child,
            base,
            data_dir: data.path.clone(),
            data,
            stderr,
            agent,
            env,
            canaries: Arc::default(),
        }
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a clean stop), without waiting.
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the server to exit; its exit status.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the server")
    }

    /// Kills the server at once (SIGKILL): no shutdown, no flushing.
    pub fn kill9(&self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status();
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
