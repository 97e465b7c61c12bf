//! `serve --dev`: the `dev` program and the shell lines printed for a newcomer.

use std::net::SocketAddr;

use crate::app::App;
use crate::cli::data::{api_key_created, api_key_revoked, create_program, new_api_key};
use crate::cli::output::CliError;
use crate::domain::program::{Mode, Settings};
use crate::domain::time::now;
use crate::store::AnyStore;
use crate::store::prelude::*;

/// `serve --dev`: a test-mode program named `dev` (made once, with PINs in
/// clear allowed so that the curl lines below work), this server's own origin
/// among its `widget_allowed_origins` so that `/demo` can frame the widgets,
/// and one API key: each start revokes the dev program's keys and makes a new
/// one (keys are stored hashed, so an earlier one cannot be printed again).
/// Every step is
/// audited as the operator's. Returns the program and the lines to print once
/// the server listens.
pub(super) async fn dev_program(
    app: &App<AnyStore>,
    addr: SocketAddr,
) -> Result<(crate::api::DemoProgram, String), CliError> {
    let existing = app
        .store
        .list_programs()
        .await
        .map_err(|e| CliError::Refused(e.to_string()))?
        .into_iter()
        .find(|p| p.name == "dev" && p.mode == Mode::Test);
    let (program, key) = match existing {
        Some(program) => {
            let keys = app.store.list_api_keys(&program.id).await?;
            for old in keys.iter().filter(|k| k.revoked_at.is_none()) {
                let audit = api_key_revoked(&old.id, Some(&program.id));
                app.store.revoke_api_key(&old.id, now(), audit).await?;
            }
            let (row, secret) = new_api_key(&program);
            let audit = api_key_created(&program, &row);
            app.store
                .create_api_key(row, audit)
                .await
                .map_err(|e| CliError::Refused(e.to_string()))?;
            (program, secret)
        }
        None => {
            let settings = Settings {
                allow_plaintext_pin: true,
                allow_plaintext_reveal: true,
                ..Settings::default()
            };
            create_program(app, "dev", Mode::Test, settings, "program.created").await?
        }
    };
    let base = format!("http://{addr}");
    let mut settings = program.settings.clone();
    for origin in [base.as_str(), app.settings.public_url.as_str()] {
        if crate::domain::program::is_origin(origin)
            && !settings.widget_allowed_origins.iter().any(|o| o == origin)
        {
            settings.widget_allowed_origins.push(origin.to_owned());
        }
    }
    // The list has at most 20 entries: a dev program that met many ports keeps the newest.
    let excess = settings.widget_allowed_origins.len().saturating_sub(20);
    settings.widget_allowed_origins.drain(..excess);
    if settings != program.settings {
        let audit = crate::audit::Actor::operator().record(
            "program.updated",
            Some(&program.id),
            None,
            serde_json::json!({ "changes": { "widget_allowed_origins": settings.widget_allowed_origins }, "by": "serve --dev" }),
        );
        app.store
            .update_program(&program.id, settings, program.mode, now(), audit)
            .await
            .map_err(|e| CliError::Refused(e.to_string()))?;
    }
    let k = key.expose();
    // Shell lines a newcomer can paste as they are (curl and sed only).
    let out = format!(
        r#"
pinvault dev mode: test program {program_id} ("dev"); PINs in clear are allowed for it.
API key (shown once; the dev program's earlier keys are revoked): {k}

Try it (paste into a shell):

export PV={base} PV_KEY={k}
CARD=$(curl -s -X POST $PV/v1/cards -H "Authorization: Bearer $PV_KEY" -H 'Content-Type: application/json' \
  -d '{{"pan":"4111111111111111","external_id":"demo-1"}}' | sed -E 's/.*"id":"(card_[a-z]+)".*/\1/')
echo "card: $CARD"
TOKEN=$(curl -s -X POST $PV/v1/cards/$CARD/control-tokens -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"type":"set_pin"}}' | sed -E 's/.*"token":"(pct_[^"]+)".*/\1/')
curl -s -o /dev/null -w 'set PIN: HTTP %{{http_code}}\n' -X PUT $PV/v1/cards/$CARD/pin \
  -H "Authorization: Bearer $PV_KEY" -H 'Content-Type: application/json' -d '{{"control_token":"'$TOKEN'","pin":"8264"}}'
curl -s $PV/v1/cards/$CARD/pin/status -H "Authorization: Bearer $PV_KEY"; echo
REVEAL=$(curl -s -X POST $PV/v1/cards/$CARD/control-tokens -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"type":"reveal_pin","cardholder_verification_method":"OTP"}}' \
  | sed -E 's/.*"token":"(pct_[^"]+)".*/\1/')
curl -s -X POST $PV/v1/cards/$CARD/pin/reveal -H "Authorization: Bearer $PV_KEY" \
  -H 'Content-Type: application/json' -d '{{"control_token":"'$REVEAL'"}}'; echo

The API: {base}/openapi.json
The demo (make a card, set and reveal its PIN in the hosted widgets, watch the events): {base}/demo
"#,
        program_id = program.id
    );
    tracing::info!(program_id = %program.id, "dev program ready");
    Ok((crate::api::DemoProgram(program.id), out))
}
