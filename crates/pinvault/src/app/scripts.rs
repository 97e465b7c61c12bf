//! Issuer scripts for a chip card's offline PIN (API.md "Chip cards"): what
//! the chip reported of earlier scripts is applied first, then the answer is
//! made from what is still pending — one `72` template with one PIN CHANGE or
//! PIN UNBLOCK command, under session keys from this authorization's ARQC and
//! ATC (the cryptography is the `emv` crate; the rules `domain::chip`).

use serde_json::json;

use super::error::{AppError, AppResult};
use super::{App, Caller, card_event};
use crate::domain::chip::{Command, OfflinePin, Reported};
use crate::domain::time::now;
use crate::events::EventType;
use crate::keys::issuer::Part;
use crate::keys::wrapped::Wrapped;
use crate::store::{CardRow, ChipData, Effects, IssuerKeySetRow, Store};

/// Most bytes of chip data (DE 55) read.
pub const ICC_DATA_MAX: usize = 512;

/// The answer for the host: the template to put into the response's DE 55
/// (hex), and the command it carries.
#[derive(Debug, Clone, Default)]
pub struct ScriptAnswer {
    pub icc_response_data: Option<String>,
    pub commands: Vec<&'static str>,
}

/// DE 55 from its hex; malformed is `invalid_request` (saying where, never what).
pub fn parse_icc_hex(hex: &str) -> AppResult<emv::IccData> {
    let refused = |why: String| AppError::Invalid(format!("`icc_data`: {why}"));
    if hex.len() > 2 * ICC_DATA_MAX || hex.len() % 2 != 0 {
        return Err(refused(format!(
            "the chip data (DE 55) in hex, at most {ICC_DATA_MAX} bytes"
        )));
    }
    let mut bytes = vec![0u8; hex.len() / 2];
    pinblock::hex::decode_into(hex, &mut bytes).map_err(|_| refused("not hexadecimal".into()))?;
    emv::parse_icc_data(&bytes).map_err(|e| refused(e.to_string()))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn reported(o: emv::ScriptOutcome) -> Reported {
    match o {
        emv::ScriptOutcome::NotPerformed => Reported::NotPerformed,
        emv::ScriptOutcome::Failed => Reported::Failed,
        emv::ScriptOutcome::Successful => Reported::Successful,
    }
}

impl<S: Store> App<S> {
    /// Applies the chip's script results and `offline_pin_blocked`, then makes
    /// the script for the first pending command (none: `null`). `card` is the
    /// caller's card as read for this request (from the read cache where it
    /// is held): what it shows decides whether anything is written; a write
    /// decides again on the card under its lock.
    pub async fn chip_scripts(
        &self,
        caller: &Caller,
        card: CardRow,
        icc: &emv::IccData,
        offline_pin_blocked: bool,
    ) -> AppResult<ScriptAnswer> {
        if card.chip.is_none() {
            return Err(AppError::Invalid(
                "this card has no chip data: there is no chip to script".into(),
            ));
        }
        let results: Vec<(String, Reported)> = icc
            .script_results
            .iter()
            .map(|r| (hex_upper(&r.script_id), reported(r.outcome)))
            .collect();
        let mut id = [0u8; 4];
        rand::Rng::fill(&mut rand::rng(), &mut id);
        let new_id = hex_upper(&id);
        let at = now();
        // Nothing to record (no result for the live script, nothing newly
        // blocked, the script to send already live or none): read only, the
        // common case at authorization. Otherwise decided again on the card
        // under its lock.
        let card = if plan(&card, &results, offline_pin_blocked, &new_id, at).is_none() {
            card
        } else {
            let next = move |card: &CardRow| plan(card, &results, offline_pin_blocked, &new_id, at);
            self.store
                .change_card_chip(&caller.program.id, &card.id, at, next)
                .await?
                .ok_or(AppError::NotFound("card"))?
        };
        let Some(chip) = &card.chip else {
            return Ok(ScriptAnswer::default());
        };
        let Some(live) = &chip.state.live_script else {
            return Ok(ScriptAnswer::default());
        };
        let set = self
            .store
            .get_key::<IssuerKeySetRow>(Some(&card.program_id), &chip.issuer_key_set_id)
            .await?
            .ok_or_else(|| AppError::Invalid("the card's issuer key set is gone".into()))?;
        let script = self
            .script(&card, chip, &set, icc, live.command, &live.id)
            .await?;
        Ok(ScriptAnswer {
            icc_response_data: Some(script),
            commands: vec![live.command.as_str()],
        })
    }

    /// The `72` template for `command` on this card, in hex.
    async fn script(
        &self,
        card: &CardRow,
        chip: &ChipData,
        set: &IssuerKeySetRow,
        icc: &emv::IccData,
        command: Command,
        script_id: &str,
    ) -> AppResult<String> {
        let provider = self.keys.provider();
        let key = |part: Part| -> AppResult<emv::TdesKey> {
            let i = part as usize;
            let k =
                Wrapped::issuer(&set.id, part, &set.kcv[i]).unwrap(&*provider, &set.wrapped[i])?;
            emv::TdesKey::from_slice(k.expose())
                .map_err(|_| AppError::Invalid("an issuer key is not double-length".into()))
        };
        let keys = emv::IssuerMasterKeys {
            ac: key(Part::Ac)?,
            smi: key(Part::Smi)?,
            smc: key(Part::Smc)?,
        };
        let psn = emv::Psn::parse(&chip.pan_sequence_number)
            .map_err(|_| AppError::Invalid("bad PAN sequence number".into()))?;
        let pan = self.card_pan(card).await?;
        let ctx = emv::ScriptContext {
            cvn: set.cvn,
            keys: &keys,
            pan: &pan,
            psn,
            atc: icc.atc,
            arqc: icc.arqc,
        };
        let apdu = match command {
            Command::ChangePin => {
                // The card's PIN as it is now (the row read under the lock).
                let pin = self.card_pin(card, &pan).await?;
                ctx.change_pin(&pin)
            }
            Command::UnblockPin => ctx.unblock_pin(),
        };
        let mut id = [0u8; 4];
        pinblock::hex::decode_into(script_id, &mut id)
            .map_err(|_| AppError::Invalid("bad script id".into()))?;
        let script = emv::issuer_script(id, &apdu);
        Ok(hex_upper(script.as_bytes()))
    }
}

/// What one request does to a chip card, decided on the card as it is under
/// its lock: the results applied, a blocked offline PIN recorded, the script
/// to send chosen; `None` when nothing changes (no write at all).
fn plan(
    card: &CardRow,
    results: &[(String, Reported)],
    offline_pin_blocked: bool,
    new_id: &str,
    at: i64,
) -> Option<(Option<ChipData>, Effects)> {
    let chip = card.chip.as_ref()?;
    let (mut state, settled) = chip.state.reported(results, at);
    let mut events = Vec::new();
    if let Some(s) = settled {
        let kind = if s.success {
            EventType::PinChipUpdated
        } else {
            EventType::PinChipUpdateFailed
        };
        events.push(card_event(
            card,
            kind,
            json!({ "command": s.script.command.as_str(), "script_id": s.script.id }),
        ));
    }
    if offline_pin_blocked && state.offline_pin != OfflinePin::Blocked {
        state = state.offline_blocked();
        events.push(card_event(card, EventType::PinOfflineBlocked, json!({})));
    }
    if let Some((next, _)) = state.next_script(new_id) {
        state = next;
    }
    if state == chip.state {
        return None;
    }
    let chip = ChipData {
        state,
        ..chip.clone()
    };
    Some((
        Some(chip),
        Effects {
            events,
            audit: None,
        },
    ))
}
