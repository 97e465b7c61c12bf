//! `pinvault api-keys`: create, revoke and list a program's API keys. Prints
//! JSON on stdout and works while servers run (the database arbitrates).

use clap::Subcommand;
use serde_json::{Value, json};

use super::data::{DataArgs, api_key_created, api_key_revoked, new_api_key, open_app};
use super::output::{CliError, pretty};
use crate::domain::time::{now, rfc3339};
use crate::store::prelude::*;

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create another API key for a program (shown only here).
    Create {
        /// The program (`prg_…`).
        #[arg(long = "program", value_name = "PROGRAM_ID")]
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke an API key: it stops working at once.
    Revoke {
        /// The API key's id (`key_…`, as `api-keys list` prints it; not the key).
        api_key_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List a program's API keys (ids and hints, never the keys).
    List {
        /// The program (`prg_…`).
        #[arg(long = "program", value_name = "PROGRAM_ID")]
        program_id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub async fn api_keys(cmd: ApiKeysCommand) -> Result<String, CliError> {
    match cmd {
        ApiKeysCommand::Create { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let Some(program) = app.store.get_program(&program_id).await? else {
                return Err(CliError::Refused(format!("no program {program_id}")));
            };
            let (row, secret) = new_api_key(&program);
            let id = row.id.clone();
            let audit = api_key_created(&program, &row);
            app.store.create_api_key(row, audit).await?;
            Ok(pretty(
                &json!({ "api_key_id": id, "program_id": program.id, "api_key": secret.expose() }),
            ))
        }
        ApiKeysCommand::Revoke { api_key_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let audit = api_key_revoked(&api_key_id, None);
            if app.store.revoke_api_key(&api_key_id, now(), audit).await? {
                Ok(pretty(
                    &json!({ "api_key_id": api_key_id, "revoked": true }),
                ))
            } else {
                Err(CliError::Refused(format!(
                    "no unrevoked API key {api_key_id}"
                )))
            }
        }
        ApiKeysCommand::List { program_id, data } => {
            let app = open_app(&data, String::new()).await?;
            let keys = app.store.list_api_keys(&program_id).await?;
            let list: Vec<Value> = keys
                .iter()
                .map(|k| {
                    json!({
                        "id": k.id,
                        "hint": k.hint,
                        "created_at": rfc3339(k.created_at),
                        "revoked_at": k.revoked_at.map(rfc3339),
                    })
                })
                .collect();
            Ok(pretty(&Value::Array(list)))
        }
    }
}
