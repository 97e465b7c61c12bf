//! Cards: made (with a random PIN or a preset one), and their status changed.

use pinblock::Pin;
use serde_json::json;
use zeroize::Zeroizing;

use super::error::{AppError, AppResult};
use super::pin::PinText;
use super::{App, Caller, card_audit, card_event};
use crate::domain::DomainError;
use crate::domain::card::{CARD_PREFIX, parse_pan, valid_expiry, valid_external_id};
use crate::domain::ids::new_id;
use crate::domain::policy;
use crate::domain::sensitive::Sensitive;
use crate::domain::time::now;
use crate::domain::zone_key::Usage;
use crate::events::EventType;
use crate::store::{
    CardRow, CardStatus, Created, Effects, IdemRow, PinWrite, PvkRow, SealedPan, SetBy, Store,
    StoreResult,
};

/// A card as the caller describes it (its `Debug` never shows the PAN).
#[derive(Debug)]
pub struct CardInput {
    pub pan: Sensitive<String>,
    pub expiry: Option<String>,
    pub external_id: Option<String>,
    /// `None`: a random PIN.
    pub pin: Option<InitialPin>,
    /// Chip data: an issuer key set (or the program's `chip_issuer_key_set_id`)
    /// and a PAN sequence number; `None`: a card without a chip.
    pub chip: Option<ChipInput>,
}

/// The PIN a card is made with.
pub enum InitialPin {
    /// In clear or encrypted to the service, as for a PIN set.
    Text(PinText),
    /// An existing card's PIN from a portfolio: an ISO 9564 block under a zone
    /// key of usage `verify` granted to the program.
    Block {
        format: pinblock::Format,
        block: Zeroizing<Vec<u8>>,
        zone_key_id: String,
    },
    /// Legacy verification data: no PIN, a Visa PVV or an IBM 3624 offset
    /// under a PIN verification key of the program.
    Legacy {
        method: crate::domain::legacy::Method,
        /// The PVV or offset (digits).
        value: Zeroizing<String>,
        /// The PVK index (Visa PVV).
        pvki: Option<String>,
        pvk_id: String,
    },
}

impl std::fmt::Debug for InitialPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InitialPin::Text(t) => t.fmt(f),
            InitialPin::Block {
                format,
                zone_key_id,
                ..
            } => write!(f, "InitialPin::Block({format}, {zone_key_id})"),
            InitialPin::Legacy { method, pvk_id, .. } => {
                write!(f, "InitialPin::Legacy({}, {pvk_id})", method.as_str())
            }
        }
    }
}

/// A card's chip data as given.
#[derive(Debug, Clone, Default)]
pub struct ChipInput {
    pub issuer_key_set_id: Option<String>,
    pub pan_sequence_number: Option<String>,
}

/// A card made and not yet stored, with what storing it writes besides.
#[derive(Debug)]
pub struct NewCard {
    pub row: CardRow,
    effects: Effects,
}

impl NewCard {
    /// The row and what storing it writes besides (a bulk import stores many
    /// in one transaction).
    pub fn into_parts(self) -> (CardRow, Effects) {
        (self.row, self.effects)
    }
}

/// An external id: 1 to 255 characters, no control character, and nothing
/// that looks like a card number (13 to 19 digits passing Luhn): it is stored,
/// logged and sent in events in clear, where a PAN must never be.
pub fn check_external_id(text: &str) -> AppResult<()> {
    if !valid_external_id(text) {
        return Err(AppError::Invalid(
            "`external_id` must be 1 to 255 characters, without control characters".into(),
        ));
    }
    if crate::domain::holds_pan(text, 13) {
        return Err(AppError::Invalid(
            "`external_id` must not look like a card number (13 to 19 digits passing the Luhn check)".into(),
        ));
    }
    Ok(())
}

impl<S: Store> App<S> {
    /// Makes a card for the caller's program: its PAN sealed and hashed, its
    /// PIN (random, or the one given, checked against the program's policy)
    /// enciphered. Stored by [`Self::save_card`].
    pub async fn new_card(&self, caller: &Caller, input: CardInput) -> AppResult<NewCard> {
        let settings = &caller.program.settings;
        let pan = parse_pan(input.pan.expose()).ok_or(AppError::InvalidPan)?;
        if let Some(e) = &input.expiry {
            if !valid_expiry(e) {
                return Err(AppError::Invalid(
                    "`expiry` must be a year and month: \"2029-12\"".into(),
                ));
            }
        }
        if let Some(x) = &input.external_id {
            check_external_id(x)?;
        }
        let checked = |text: &str| -> AppResult<Pin> {
            policy::check_text(text, settings, &pan).map_err(|r| DomainError::from(r).into())
        };
        let mut legacy = None;
        let (pin, set_by) = match input.pin {
            Some(InitialPin::Legacy {
                method,
                value,
                pvki,
                pvk_id,
            }) => {
                let (data, value) = self
                    .legacy_data(caller, method, &value, pvki.as_deref(), &pvk_id, &pan)
                    .await?;
                legacy = Some(data);
                (value, SetBy::Issuer)
            }
            None => {
                let pin =
                    policy::random_pin(settings, caller.program.mode, &pan).ok_or_else(|| {
                        AppError::Service(
                            crate::keys::KeyError::Provider("no random PIN".into()).into(),
                        )
                    })?;
                (pin, SetBy::Random)
            }
            Some(InitialPin::Text(PinText::Clear(text))) => {
                if !settings.allow_plaintext_pin {
                    return Err(AppError::PlaintextNotAllowed(
                        "this program does not accept PINs in clear: send `pin.encrypted`",
                    ));
                }
                (checked(&text)?, SetBy::Issuer)
            }
            Some(InitialPin::Block {
                format,
                block,
                zone_key_id,
            }) => (
                self.pin_from_block(caller, format, &block, &zone_key_id, &pan)
                    .await?,
                SetBy::Issuer,
            ),
            Some(InitialPin::Text(PinText::Encrypted(jwe))) => {
                // The card has no id yet: a plaintext naming a `card_id` cannot match.
                let text = self.decrypt_pin(&jwe, None).await?.map_err(|e| {
                    tracing::debug!(reason = e.0, "encrypted PIN refused");
                    AppError::DecryptionFailed
                })?;
                (checked(&text)?, SetBy::Issuer)
            }
        };
        let card_id = new_id(CARD_PREFIX);
        let t = now();
        let (pan_key_version, pan_sealed) = self.keys.seal_pan(&card_id, &pan)?;
        let (lookup_key_version, pan_hash) = self.keys.pan_hash(&pan)?;
        let (pin_key_version, pin_block) = self.keys.encipher_pin(&pin, &pan)?;
        drop(pin);
        let sealed = SealedPan {
            hash: pan_hash,
            lookup_key_version,
            sealed: pan_sealed,
            key_version: pan_key_version,
            last4: pan.last4(),
        };
        let pin = PinWrite {
            block: pin_block,
            key_version: pin_key_version,
            set_by,
        };
        let program_id = caller.program.id.clone();
        let chip = match &input.chip {
            None => None,
            Some(c) => Some(self.chip_data(caller, c).await?),
        };
        let mut row = CardRow::issued(
            card_id,
            program_id,
            sealed,
            pin,
            input.expiry,
            input.external_id,
            t,
        );
        row.chip = chip;
        let verification = crate::domain::legacy::verification(legacy.as_ref());
        row.legacy = legacy;
        let effects = Effects {
            events: vec![card_event(
                &row,
                EventType::CardCreated,
                json!({
                    "last4": row.last4,
                    "expiry": row.expiry,
                    "external_id": row.external_id,
                    "status": row.status.as_str(),
                    "pin_set_by": set_by.as_str(),
                    "pin_verification": verification,
                }),
            )],
            audit: Some(card_audit(
                &caller.actor(),
                "card.created",
                &row,
                json!({ "last4": row.last4, "pin_set_by": set_by.as_str() }),
            )),
        };
        Ok(NewCard { row, effects })
    }

    /// A portfolio's PIN, deciphered from its block. It is the cardholder's
    /// PIN already: only its form is checked (4 to 12 digits, which
    /// deciphering checks), not the program's length or weak-PIN rules, which
    /// apply to PINs chosen from now on.
    async fn pin_from_block(
        &self,
        caller: &Caller,
        format: pinblock::Format,
        block: &[u8],
        zone_key_id: &str,
        pan: &pinblock::Pan,
    ) -> AppResult<Pin> {
        let key = self
            .program_zone_key(caller, zone_key_id, Usage::Verify, format)
            .await?;
        pinblock::decipher(format, block, pan, &key).map_err(|_| AppError::DecryptionFailed)
    }

    /// Legacy verification data checked against the program's PIN
    /// verification key: the card's legacy columns and the value (PVV or
    /// offset) as what is enciphered where a PIN would be.
    async fn legacy_data(
        &self,
        caller: &Caller,
        method: crate::domain::legacy::Method,
        value: &str,
        pvki: Option<&str>,
        pvk_id: &str,
        pan: &pinblock::Pan,
    ) -> AppResult<(crate::domain::legacy::Legacy, Pin)> {
        use crate::domain::legacy::{self, Legacy, Method};
        let not_found = || AppError::NotFound("PIN verification key for this program");
        if !crate::domain::ids::is_id(pvk_id, super::pvks::PVK_PREFIX) {
            return Err(not_found());
        }
        let key = self
            .store
            .get_key::<PvkRow>(Some(&caller.program.id), pvk_id)
            .await?
            .ok_or_else(not_found)?;
        if key.method != method {
            return Err(AppError::Invalid(format!(
                "`pin.pin_verification_key_id` is a key for {}, not for {}",
                key.method.as_str(),
                method.as_str()
            )));
        }
        let pvki = match method {
            Method::VisaPvv => {
                if !legacy::valid_pvv(value) {
                    return Err(AppError::Invalid("`pin.pvv` must be 4 digits".into()));
                }
                Some(pvki.and_then(legacy::parse_pvki).ok_or_else(|| {
                    AppError::Invalid("`pin.pvki` must be one digit, 0 to 9".into())
                })?)
            }
            Method::Ibm3624 => {
                let params = key.params.clone().unwrap_or_default();
                let length = params.pin_length();
                if !legacy::valid_offset(value, length) {
                    return Err(AppError::Invalid(format!(
                        "`pin.ibm3624_offset` must be {length} digits (the key's PIN check length)"
                    )));
                }
                let end = usize::from(params.validation_offset())
                    + usize::from(params.validation_length());
                if end > pan.len() {
                    return Err(AppError::Invalid(format!(
                        "the key's validation data (PAN digits {} to {end}) does not fit this {}-digit PAN",
                        params.validation_offset() + 1,
                        pan.len()
                    )));
                }
                None
            }
        };
        let value = Pin::new(value).map_err(|_| AppError::Invalid("bad legacy value".into()))?;
        Ok((
            Legacy {
                method,
                pvk_id: key.id,
                pvki,
            },
            value,
        ))
    }

    /// Stores a card made by [`Self::new_card`], with the idempotency record
    /// of the request that made it.
    pub async fn save_card(
        &self,
        caller: &Caller,
        card: NewCard,
        idem: Option<IdemRow>,
    ) -> StoreResult<Created> {
        let (id, set_by) = (card.row.id.clone(), card.row.pin_set_by);
        let created = self.store.create_card(card.row, idem, card.effects).await?;
        tracing::info!(card_id = %id, actor = %caller.name(), set_by = set_by.as_str(), "card created");
        Ok(created)
    }

    /// Changes a card's status; reactivating a card PIN blocking made
    /// inactive also unblocks its PIN (`domain::card::PinState::with_status`).
    pub async fn set_card_status(
        &self,
        caller: &Caller,
        id: &str,
        status: CardStatus,
    ) -> AppResult<CardRow> {
        self.find_card(caller, id).await?;
        let actor = caller.actor();
        let card = self
            .store
            .set_card_status(
                &caller.program.id,
                id,
                status,
                now(),
                move |before, after| {
                    let unblocked = before.pin_blocked && !after.pin_blocked;
                    let mut events = Vec::new();
                    if unblocked {
                        // The reactivation reset the fail count as well.
                        events.push(card_event(
                            after,
                            EventType::PinFailCountReset,
                            json!({ "fail_count_before": before.fail_count, "was_blocked": true }),
                        ));
                        events.push(card_event(
                            after,
                            EventType::PinUnblocked,
                            json!({ "reason": "card_reactivated" }),
                        ));
                    }
                    Effects {
                        events,
                        audit: Some(card_audit(
                            &actor,
                            "card.status_changed",
                            after,
                            json!({
                                "from": before.status.as_str(),
                                "to": after.status.as_str(),
                                "pin_unblocked": unblocked,
                            }),
                        )),
                    }
                },
            )
            .await?
            .ok_or(AppError::NotFound("card"))?;
        tracing::info!(card_id = %card.id, actor = %caller.name(), status = status.as_str(), "card status changed");
        Ok(card)
    }
}
