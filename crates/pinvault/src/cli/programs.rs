//! `pinvault programs`: create, update, list and show programs (tenants).
//! Prints JSON on stdout and works while servers run (the database arbitrates).

use clap::{Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

use super::data::{DataArgs, create_program, open_app};
use super::output::{CliError, pretty};
use crate::api::program_json;
use crate::audit::Actor;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::store::prelude::*;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// A test-mode program (API keys `pv_test_…`).
    Test,
    /// A live program (API keys `pv_live_…`).
    Live,
}

#[derive(Debug, Subcommand)]
pub enum ProgramsCommand {
    /// Create a program and its first API key (shown only here).
    Create {
        /// The program's name (1 to 200 characters), for people; not unique.
        #[arg(long)]
        name: String,
        /// test: keys `pv_test_…`, new cards' first PIN 0000, the sandbox
        /// terminal; live: keys `pv_live_…`, random first PINs.
        #[arg(long, value_enum, default_value = "test")]
        mode: ModeArg,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change a program's settings (and mode): --set KEY=VALUE …
    ///
    /// Each KEY=VALUE changes one setting; give several after one --set
    /// (`--set max_tries=5 reveal_display_s=30`), or repeat --set. VALUE is JSON
    /// (3, true, "staged", ["https://app.example.com"], null) or plain text
    /// (staged). Nothing changes unless every pair is valid. Prints the program.
    #[command(after_help = crate::domain::program::settings_help())]
    Update {
        /// The program (`prg_…`, as `programs create` and `programs list` print it).
        program_id: String,
        /// A setting and its new value, KEY=VALUE; several may follow one --set
        /// (the settings are listed below).
        #[arg(long = "set", value_name = "KEY=VALUE", required = true, num_args = 1..)]
        set: Vec<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List programs.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one program.
    Show {
        /// The program (`prg_…`).
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn programs(cmd: ProgramsCommand) -> Result<String, CliError> {
    match cmd {
        ProgramsCommand::Create { name, mode, data } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(CliError::Refused(
                    "--name must be 1 to 200 characters".into(),
                ));
            }
            let app = open_app(&data, String::new()).await?;
            let mode = match mode {
                ModeArg::Test => Mode::Test,
                ModeArg::Live => Mode::Live,
            };
            let (program, key) =
                create_program(&app, name, mode, Settings::default(), "program.created").await?;
            Ok(pretty(
                &json!({ "program_id": program.id, "api_key": key.expose() }),
            ))
        }
        ProgramsCommand::Update {
            program_id,
            set,
            data,
        } => {
            let app = open_app(&data, String::new()).await?;
            let program = app.store.get_program(&program_id).await?;
            let Some(mut program) = program else {
                return Err(CliError::Refused(format!("no program {program_id}")));
            };
            let mut changes = Map::new();
            let mut mode = program.mode;
            for item in &set {
                let Some((key, value)) = item.split_once('=') else {
                    return Err(CliError::Refused(format!(
                        "--set takes key=value, got `{item}`"
                    )));
                };
                if key == "mode" {
                    mode = Mode::parse(value)
                        .ok_or_else(|| CliError::Refused("mode must be test or live".into()))?;
                    continue;
                }
                let value =
                    serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
                changes.insert(key.to_owned(), value);
            }
            let settings = program
                .settings
                .apply(&changes, true)
                .map_err(|e| match e {
                    crate::domain::DomainError::Invalid(m)
                    | crate::domain::DomainError::Forbidden(m) => CliError::Refused(m),
                    other => CliError::Refused(format!("{other:?}")),
                })?;
            app.check_settings(&program.id, &settings)
                .await
                .map_err(|e| match e {
                    crate::app::error::AppError::Service(s) => CliError::Service(s),
                    crate::app::error::AppError::Invalid(m) => CliError::Refused(m),
                    other => CliError::Refused(format!("{other:?}")),
                })?;
            let t = now();
            let mut details = json!({ "changes": changes });
            if mode != program.mode {
                details["mode"] = json!({ "from": program.mode.as_str(), "to": mode.as_str() });
            }
            let audit =
                Actor::operator().record("program.updated", Some(&program.id), None, details);
            app.store
                .update_program(&program.id, settings.clone(), mode, t, audit)
                .await?;
            program.settings = settings;
            program.mode = mode;
            program.updated_at = t;
            Ok(pretty(&program_json(&program)))
        }
        ProgramsCommand::List { data } => {
            let app = open_app(&data, String::new()).await?;
            let list: Vec<Value> = app
                .store
                .list_programs()
                .await?
                .iter()
                .map(program_json)
                .collect();
            Ok(pretty(&Value::Array(list)))
        }
        ProgramsCommand::Show { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            match app.store.get_program(&program_id).await? {
                Some(p) => Ok(pretty(&program_json(&p))),
                None => Err(CliError::Refused(format!("no program {program_id}"))),
            }
        }
    }
}
