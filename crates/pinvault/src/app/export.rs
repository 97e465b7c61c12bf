//! PIN export (API.md "PIN export"): a card's PIN as an ISO 9564 block under
//! a zone key of usage `export` granted to the program, for a card bureau
//! (the chip and the PIN mailer) or an issuer taking its PINs elsewhere. Only
//! where the operator has set `allow_pin_export`; every export is an event
//! (`pin.exported`) and an audit record, written before the block is given.

use std::sync::Arc;

use pinblock::{Format, KeyAlgorithm, ZoneKey};
use serde_json::json;

use super::error::{AppError, AppResult};
use super::zone_keys::ZoneKeyError;
use super::{App, Caller, card_audit, card_event};
use crate::domain::DomainError;
use crate::domain::zone_key::Usage;
use crate::events::EventType;
use crate::store::{CardRow, Effects, Store};

/// An exported PIN block (enciphered: it is the answer's purpose).
#[derive(Debug)]
pub struct Exported {
    /// Upper-case hex.
    pub pin_block: String,
    pub format: Format,
    /// The zone key's check value, for the receiver to confirm the key.
    pub kcv: String,
}

impl<S: Store> App<S> {
    /// The zone key `zone_key_id` granted to the caller's program for
    /// `usage`, to carry PIN blocks of `format`: 404 `not_found` (no such key
    /// for the program), 403 `forbidden` (a key of the other usage), 422
    /// `invalid_request` (format 4 under a TDES key).
    pub(super) async fn program_zone_key(
        &self,
        caller: &Caller,
        zone_key_id: &str,
        usage: Usage,
        format: Format,
    ) -> AppResult<Arc<ZoneKey>> {
        let key = self
            .zone_key_for(zone_key_id, &caller.program.id, usage)
            .await
            .map_err(|e| match e {
                ZoneKeyError::NotFound => AppError::NotFound("zone key for this program"),
                ZoneKeyError::WrongUsage(_) => AppError::Domain(DomainError::Forbidden(
                    match usage {
                        Usage::Verify => "this zone key is of usage `export`: PIN blocks under it go out, none come in",
                        Usage::Export => "this zone key is of usage `verify`: PIN blocks come in under it; an export needs a zone key of usage `export`",
                    }
                    .into(),
                )),
                ZoneKeyError::Service(e) => AppError::Service(e),
            })?;
        if format == Format::Iso4 && key.algorithm() != KeyAlgorithm::Aes {
            return Err(AppError::Invalid(
                "format iso_4 is enciphered under AES only: this zone key is TDES".into(),
            ));
        }
        Ok(key)
    }

    /// The card's PIN as a `format` block under the export zone key `zone_key_id`.
    pub async fn export_pin(
        &self,
        caller: &Caller,
        card: &CardRow,
        zone_key_id: &str,
        format: Format,
    ) -> AppResult<Exported> {
        if !caller.program.settings.allow_pin_export {
            return Err(AppError::ExportNotAllowed);
        }
        let key = self
            .program_zone_key(caller, zone_key_id, Usage::Export, format)
            .await?;
        let pan = self.card_pan(card).await?;
        let pin = self.card_pin(card, &pan).await?;
        let block =
            pinblock::encipher(format, &pin, &pan, &key, &mut rand::rng()).map_err(|_| {
                AppError::Invalid("this PIN cannot be put in a block of this format".into())
            })?;
        drop(pin);
        let kcv = key.kcv().to_string();
        let details =
            json!({ "zone_key_id": zone_key_id, "format": format.to_string(), "kcv": kcv });
        self.store
            .record_effects(Effects {
                events: vec![card_event(card, EventType::PinExported, details.clone())],
                audit: Some(card_audit(&caller.actor(), "pin.exported", card, details)),
            })
            .await?;
        tracing::info!(card_id = %card.id, actor = %caller.name(), zone_key_id = %zone_key_id,
            format = %format, "PIN exported");
        Ok(Exported {
            pin_block: block.to_hex(),
            format,
            kcv,
        })
    }
}
