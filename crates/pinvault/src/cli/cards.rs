//! `pinvault cards import`: a portfolio's cards from a JSON Lines file, one
//! `POST /v1/cards` body a line, each with an `external_id`. Streaming (one
//! line in memory at a time, batches of [`BATCH`] cards a transaction),
//! resumable (a card whose program has its external id already is skipped, so
//! a second run of a file imports nothing twice), and safe beside running
//! servers (the database arbitrates). Progress on stderr; the counts on
//! stdout; refused lines, with their reason and never their PIN data, in the
//! rejects file.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};
use zeroize::Zeroize;

use super::data::{DataArgs, open_app_for_bulk};
use super::output::{CliError, pretty};
use super::progress::Progress;
use crate::api::error::ApiError;
use crate::app::cards::NewCard;
use crate::app::{App, Caller, CallerKind};
use crate::store::prelude::*;
use crate::store::{CardRow, Effects, StoreResult};

/// Cards a transaction.
const BATCH: usize = 2_000;
/// The longest line read (a card body is well under 10 KB).
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Import cards from a JSON Lines file: each line a `POST /v1/cards` body
    /// with an `external_id`. Cards whose external id the program has already
    /// are skipped (run it again after an interruption: nothing is imported
    /// twice). Prints `{"imported","skipped","rejected"}`.
    Import {
        /// The program (`prg_…`) the cards belong to.
        #[arg(long, value_name = "PRG")]
        program: String,
        /// The JSON Lines file (`-`: standard input).
        #[arg(long, value_name = "CARDS.jsonl")]
        file: PathBuf,
        /// Where refused lines go, one JSON object each: the line number, the
        /// external id (when it is one), the error code and the reason. Never
        /// the line itself. Without it, the reasons go to stderr.
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn cards(cmd: CardsCommand) -> Result<String, CliError> {
    match cmd {
        CardsCommand::Import {
            program,
            file,
            rejects,
            data,
        } => {
            // Its commits reach the disk together at the end (below), not one
            // by one: a run that a power cut interrupts is run again.
            let app = std::sync::Arc::new(open_app_for_bulk(&data).await?);
            let program = app
                .store
                .get_program(&program)
                .await?
                .ok_or_else(|| CliError::Refused(format!("no program {program}")))?;
            let caller = Caller {
                program,
                kind: CallerKind::Operator,
                request_id: None,
                source: None,
            };
            let (input, size): (Box<dyn BufRead>, Option<u64>) = if file.as_os_str() == "-" {
                (Box::new(BufReader::new(std::io::stdin())), None)
            } else {
                let f = std::fs::File::open(&file).map_err(|e| {
                    CliError::Refused(format!("cannot read {}: {e}", file.display()))
                })?;
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(BufReader::with_capacity(1 << 20, f)), size)
            };
            let rejects = match rejects {
                None => None,
                Some(path) => Some(std::io::BufWriter::new(
                    std::fs::File::create(&path).map_err(|e| {
                        CliError::Refused(format!("cannot write {}: {e}", path.display()))
                    })?,
                )),
            };
            let mut import = Import {
                app: app.clone(),
                caller: &caller,
                file: file.display().to_string(),
                batch: Vec::with_capacity(BATCH),
                writing: None,
                counts: Counts::default(),
                rejects,
                size,
                progress: Progress::new("cards import", "cards"),
            };
            let ran = import.run(input).await;
            // What was imported is on disk before the counts say so (and
            // after a failure too, for the run that follows).
            let store = app.store.clone();
            tokio::task::spawn_blocking(move || store.sync())
                .await
                .map_err(|e| CliError::Refused(format!("sync task failed: {e}")))?
                .map_err(|e| {
                    CliError::Refused(format!(
                        "the cards imported may not be on disk ({e}): run the import again"
                    ))
                })?;
            ran?;
            let c = &import.counts;
            Ok(pretty(&json!({
                "imported": c.imported,
                "skipped": c.skipped,
                "rejected": c.rejected,
            })))
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    lines: u64,
    bytes: u64,
    imported: u64,
    skipped: u64,
    rejected: u64,
}

struct Import<'a, S: Store> {
    app: std::sync::Arc<App<S>>,
    caller: &'a Caller,
    file: String,
    /// Cards made and not yet stored, with their line numbers.
    batch: Vec<(u64, NewCard)>,
    /// The batch being written (while the next is made): its size and the
    /// write.
    writing: Option<(usize, tokio::task::JoinHandle<StoreResult<Vec<usize>>>)>,
    counts: Counts,
    rejects: Option<std::io::BufWriter<std::fs::File>>,
    /// The file's size, when known (the share read).
    size: Option<u64>,
    progress: Progress,
}

impl<S: Store + 'static> Import<'_, S> {
    async fn run(&mut self, mut input: Box<dyn BufRead>) -> Result<(), CliError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = read_line(&mut input, &mut line)?;
            if n == 0 {
                break;
            }
            self.counts.lines += 1;
            self.counts.bytes += n as u64;
            let number = self.counts.lines;
            match self.card(&line).await {
                Ok(Some(card)) => self.batch.push((number, card)),
                Ok(None) => {}
                Err((external_id, e)) => self.reject(number, external_id.as_deref(), &e)?,
            }
            line.zeroize();
            if self.batch.len() >= BATCH {
                self.flush().await?;
            }
            self.tick(false);
        }
        self.flush().await?;
        self.written().await?;
        self.tick(true);
        if let Some(w) = &mut self.rejects {
            w.flush()?;
        }
        Ok(())
    }

    fn tick(&mut self, end: bool) {
        let c = &self.counts;
        let share = self
            .size
            .filter(|&s| s > 0)
            .map(|s| c.bytes as f64 / s as f64);
        let text = format!(
            "{} lines: {} imported, {} skipped, {} rejected",
            c.lines, c.imported, c.skipped, c.rejected
        );
        self.progress
            .tick(share, c.imported + c.skipped + c.rejected, &text, end);
    }

    /// One line made into a card (not stored yet); `None` for a blank line.
    async fn card(&self, line: &[u8]) -> Result<Option<NewCard>, (Option<String>, ApiError)> {
        if line.len() > MAX_LINE {
            return Err((
                None,
                ApiError::invalid(format!("the line is longer than {MAX_LINE} bytes")),
            ));
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| (None, ApiError::invalid("the line is not UTF-8")))?
            .trim();
        if text.is_empty() {
            return Ok(None);
        }
        let raw: Value = serde_json::from_str(text).map_err(|e| {
            (
                None,
                ApiError::invalid(format!(
                    "the line is not a JSON object (column {})",
                    e.column()
                )),
            )
        })?;
        // A key twice is refused as the API refuses it (a reader of the
        // first one would see another card).
        if let Err(e) = crate::api::unique_keys(text.as_bytes()) {
            let reason = e.to_string();
            let reason = reason.split(" at line ").next().unwrap_or(&reason);
            return Err((None, ApiError::invalid(format!("the line has {reason}"))));
        }
        // The external id is named in the rejects file only once it is one
        // (never something that looks like a PAN).
        let external_id = raw
            .get("external_id")
            .and_then(Value::as_str)
            .filter(|x| crate::app::cards::check_external_id(x).is_ok())
            .map(str::to_owned);
        if external_id.is_none() {
            let e = match raw.get("external_id") {
                None | Some(Value::Null) => ApiError::invalid(
                    "`external_id` is needed on every line of an import: it is what makes a second run skip the card",
                ),
                Some(Value::String(x)) => match crate::app::cards::check_external_id(x) {
                    Err(e) => e.into(),
                    Ok(()) => ApiError::invalid("`external_id` is not usable"),
                },
                Some(_) => ApiError::invalid("`external_id` must be a string"),
            };
            return Err((None, e));
        }
        let input = crate::api::card_input(raw).map_err(|e| (external_id.clone(), e))?;
        let card = self
            .app
            .new_card(self.caller, input)
            .await
            .map_err(|e| (external_id, ApiError::from(e)))?;
        Ok(Some(card))
    }

    /// Stores the batch in one transaction, in the background: the next
    /// batch is made while it is written (the previous write is waited for
    /// first, so at most one is in flight and a failure stops the import).
    async fn flush(&mut self) -> Result<(), CliError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.written().await?;
        let batch = std::mem::take(&mut self.batch);
        self.batch.reserve(BATCH);
        let first = batch.first().map_or(0, |(n, _)| *n);
        let last = batch.last().map_or(0, |(n, _)| *n);
        let cards: Vec<(CardRow, Effects)> =
            batch.into_iter().map(|(_, c)| c.into_parts()).collect();
        let total = cards.len();
        let actor = self.caller.actor();
        let program_id = self.caller.program.id.clone();
        let file = self.file.clone();
        let audit = move |imported: usize, skipped: usize| {
            actor.record(
                "cards.imported",
                Some(&program_id),
                None,
                json!({ "file": file, "lines": [first, last], "imported": imported, "skipped": skipped }),
            )
        };
        let app = self.app.clone();
        let program_id = self.caller.program.id.clone();
        let write =
            tokio::spawn(async move { app.store.import_cards(&program_id, cards, audit).await });
        self.writing = Some((total, write));
        // Let the write start (SQLite hands it to its writer thread).
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Waits for the batch being written, and counts it.
    async fn written(&mut self) -> Result<(), CliError> {
        let Some((total, write)) = self.writing.take() else {
            return Ok(());
        };
        let skipped = write
            .await
            .map_err(|e| CliError::Refused(format!("the import's write failed: {e}")))??;
        self.counts.skipped += skipped.len() as u64;
        self.counts.imported += (total - skipped.len()) as u64;
        Ok(())
    }

    fn reject(
        &mut self,
        line: u64,
        external_id: Option<&str>,
        e: &ApiError,
    ) -> Result<(), CliError> {
        self.counts.rejected += 1;
        let entry = json!({
            "line": line,
            "external_id": external_id,
            "code": e.code.as_str(),
            "reason": e.detail,
        });
        match &mut self.rejects {
            Some(w) => writeln!(w, "{entry}")?,
            None => self
                .progress
                .say(&format!("line {line}: {} ({})", e.detail, e.code.as_str())),
        }
        Ok(())
    }
}

/// One line, without its end; 0 at the end of the input. A line longer than
/// [`MAX_LINE`] is read to its end and kept only in part (then refused).
fn read_line(input: &mut Box<dyn BufRead>, line: &mut Vec<u8>) -> Result<usize, CliError> {
    let mut total = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if line.len() <= MAX_LINE {
            let room = (MAX_LINE + 1).saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let used = done.unwrap_or(buf.len());
        total += used;
        input.consume(used);
        if done.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(total);
        }
    }
}
