//! Chip cards' data and their offline PIN's pending commands (API.md "Chip
//! cards"; the rules are `domain::chip`).

use serde_json::json;

use super::cards::ChipInput;
use super::error::{AppError, AppResult};
use super::{App, Caller, card_audit};
use crate::domain::chip::{ChipState, valid_pan_sequence_number};
use crate::domain::program::Settings;
use crate::domain::time::now;
use crate::store::{CardRow, ChipData, Effects, IssuerKeySetRow, Store};

impl<S: Store> App<S> {
    /// Refuses settings whose `chip_issuer_key_set_id` names no issuer key set
    /// of the program.
    pub async fn check_settings(&self, program_id: &str, settings: &Settings) -> AppResult<()> {
        if let Some(id) = &settings.chip_issuer_key_set_id {
            if self
                .store
                .get_key::<IssuerKeySetRow>(Some(program_id), id)
                .await?
                .is_none()
            {
                return Err(AppError::Invalid(format!(
                    "`chip_issuer_key_set_id`: no issuer key set {id} in this program"
                )));
            }
        }
        Ok(())
    }

    /// A new chip card's chip data: the issuer key set given (or the
    /// program's default), checked to be the program's, and the sequence
    /// number (default `00`).
    pub async fn chip_data(&self, caller: &Caller, input: &ChipInput) -> AppResult<ChipData> {
        let id = input
            .issuer_key_set_id
            .clone()
            .or_else(|| caller.program.settings.chip_issuer_key_set_id.clone())
            .ok_or_else(|| {
                AppError::Invalid(
                    "`chip.issuer_key_set_id` is needed: the program has no `chip_issuer_key_set_id`"
                        .into(),
                )
            })?;
        if !crate::domain::ids::is_id(&id, "iks_")
            || self
                .store
                .get_key::<IssuerKeySetRow>(Some(&caller.program.id), &id)
                .await?
                .is_none()
        {
            return Err(AppError::Invalid(format!(
                "`chip.issuer_key_set_id`: no issuer key set {} in this program",
                if id.len() <= 64 {
                    id.as_str()
                } else {
                    "(too long)"
                }
            )));
        }
        let psn = input
            .pan_sequence_number
            .clone()
            .unwrap_or_else(|| "00".into());
        if !valid_pan_sequence_number(&psn) {
            return Err(AppError::Invalid(
                "`chip.pan_sequence_number` is two digits: \"01\"".into(),
            ));
        }
        Ok(ChipData {
            issuer_key_set_id: id,
            pan_sequence_number: psn,
            state: ChipState::issued(),
        })
    }

    /// Adds or changes a card's chip data (`PATCH`); the offline-PIN state is
    /// kept when the card had chip data already.
    pub async fn set_chip(
        &self,
        caller: &Caller,
        card_id: &str,
        input: &ChipInput,
    ) -> AppResult<CardRow> {
        let card = self.find_card(caller, card_id).await?;
        let chip = self.chip_data(caller, input).await?;
        let audit = card_audit(
            &caller.actor(),
            "card.chip_updated",
            &card,
            json!({ "issuer_key_set_id": chip.issuer_key_set_id,
                    "pan_sequence_number": chip.pan_sequence_number }),
        );
        let effects = Effects {
            events: Vec::new(),
            audit: Some(audit),
        };
        // The offline-PIN state is kept when the card had chip data already.
        let next = move |card: &CardRow| {
            let state = card
                .chip
                .as_ref()
                .map_or_else(ChipState::issued, |c| c.state.clone());
            let chip = ChipData {
                state,
                ..chip.clone()
            };
            Some((Some(chip), effects.clone()))
        };
        self.store
            .change_card_chip(&caller.program.id, card_id, now(), next)
            .await?
            .ok_or(AppError::NotFound("card"))
    }

    /// Makes `unblock_pin` pending on a chip card (none if `change_pin` is).
    pub async fn unblock_offline_pin(&self, caller: &Caller, card_id: &str) -> AppResult<()> {
        let card = self.find_card(caller, card_id).await?;
        let Some(chip) = &card.chip else {
            return Err(AppError::Invalid(
                "this card has no chip data: its PIN is checked online only".into(),
            ));
        };
        let audit = card_audit(
            &caller.actor(),
            "card.offline_pin_unblock_requested",
            &card,
            json!({ "pan_sequence_number": chip.pan_sequence_number }),
        );
        // Applied to the card as it is under its lock: a PIN change since the
        // read above is never lost.
        let effects = Effects {
            events: Vec::new(),
            audit: Some(audit),
        };
        let next = move |card: &CardRow| {
            card.chip.as_ref().map(|c| {
                let chip = ChipData {
                    state: c.state.unblock_requested(),
                    ..c.clone()
                };
                (Some(chip), effects.clone())
            })
        };
        self.store
            .change_card_chip(&caller.program.id, card_id, now(), next)
            .await?
            .ok_or(AppError::NotFound("card"))?;
        Ok(())
    }
}
