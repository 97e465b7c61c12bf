//! The PIN's use cases: set (or stage) with a token, commit what is staged,
//! reveal with a token, unblock. Shared by the API and the hosted widgets.

use serde_json::json;
use zeroize::Zeroizing;

use super::error::{AppError, AppResult};
use super::{App, Caller, card_audit, card_event};
use crate::domain::DomainError;
use crate::domain::card::CARD_PREFIX;
use crate::domain::ids::is_id;
use crate::domain::policy::{self, PinRejection};
use crate::domain::program::PinSetMode;
use crate::domain::time::{now, rfc3339};
use crate::domain::token::TokenType;
use crate::events::EventType;
use crate::jose::{DecryptFailed, DeviceKey};
use crate::keys::KeyKind;
use crate::store::{CardRow, Effects, PinChange, PinWrite, SetBy, Store, TokenRow};

/// A PIN as the caller sent it.
pub enum PinText {
    /// In clear: only where the program has `allow_plaintext_pin`.
    Clear(Zeroizing<String>),
    /// A compact JWE to a published PIN encryption key.
    Encrypted(String),
}

impl std::fmt::Debug for PinText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PinText::Clear(_) => "PinText::Clear(..)",
            PinText::Encrypted(_) => "PinText::Encrypted(..)",
        })
    }
}

/// What a set did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOutcome {
    /// The PIN is the card's PIN.
    Set,
    /// Staged mode: the PIN waits for a commit.
    Staged,
}

/// Where a revealed PIN goes.
#[derive(Debug)]
pub enum RevealTo {
    /// Encrypted to the cardholder's device key (a public P-256 JWK, checked
    /// after the token).
    Device(serde_json::Value),
    /// In clear to the caller: only where the program allows it.
    Clear,
}

/// A revealed PIN.
pub enum Revealed {
    /// A compact JWE (`ECDH-ES`, `A256GCM`) to the device key.
    Encrypted(String),
    Clear(Zeroizing<String>),
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Revealed::Encrypted(_) => "Revealed::Encrypted(..)",
            Revealed::Clear(_) => "Revealed::Clear(..)",
        })
    }
}

/// Free text an unblock records in the audit trail (never in a log).
#[derive(Debug, Default, Clone)]
pub struct UnblockNote {
    pub description: Option<String>,
    pub updated_by: Option<String>,
}

impl<S: Store> App<S> {
    /// The program's card with this id; any other card (another program's,
    /// or none) is the same `NotFound`.
    pub async fn find_card(&self, caller: &Caller, id: &str) -> AppResult<CardRow> {
        if !is_id(id, CARD_PREFIX) {
            return Err(AppError::NotFound("card"));
        }
        self.store
            .get_card(&caller.program.id, id)
            .await?
            .ok_or(AppError::NotFound("card"))
    }

    /// The card's PAN, opened.
    pub async fn card_pan(&self, card: &CardRow) -> AppResult<pinblock::Pan> {
        self.ensure_key(KeyKind::Pan, card.pan_key_version).await?;
        Ok(self
            .keys
            .open_pan(&card.id, card.pan_key_version, &card.pan_sealed)?)
    }

    /// The card's PIN, deciphered, for every use but its verification (which
    /// also checks legacy data): `pin_not_available` for a card migrated with
    /// a PVV or an IBM 3624 offset, whose `pin_block` holds that value, not a
    /// PIN, until a verification captures the PIN.
    pub async fn card_pin(&self, card: &CardRow, pan: &pinblock::Pan) -> AppResult<pinblock::Pin> {
        if card.legacy.is_some() {
            return Err(AppError::PinNotAvailable);
        }
        self.ensure_key(KeyKind::Pin, card.pin_key_version).await?;
        Ok(self
            .keys
            .decipher_pin(card.pin_key_version, &card.pin_block, pan)?)
    }

    /// The digits of a PIN as sent for `card`: in clear only where the
    /// program has `allow_plaintext_pin`; `Ok(Err(…))` for a JWE that cannot
    /// be used (whatever the reason: one answer).
    pub(super) async fn pin_digits(
        &self,
        caller: &Caller,
        card: &CardRow,
        pin: PinText,
    ) -> AppResult<Result<Zeroizing<String>, DecryptFailed>> {
        match pin {
            PinText::Clear(text) if caller.program.settings.allow_plaintext_pin => Ok(Ok(text)),
            PinText::Clear(_) => Err(AppError::PlaintextNotAllowed(
                "this program does not accept PINs in clear: send them encrypted",
            )),
            PinText::Encrypted(jwe) => Ok(self.decrypt_pin(&jwe, Some(&card.id)).await?),
        }
    }

    /// Sets (or, in a staged program, stages) `card`'s PIN with a `set_pin`
    /// token. A refused PIN uses one of the token's attempts.
    pub async fn set_pin(
        &self,
        caller: &Caller,
        card: &CardRow,
        token: &str,
        pin: PinText,
    ) -> AppResult<SetOutcome> {
        let settings = &caller.program.settings;
        let token = self.usable_token(card, token, TokenType::SetPin).await?;
        let staged = settings.pin_set_mode == PinSetMode::Staged || token.always_staged;
        let text = match self.pin_digits(caller, card, pin).await? {
            Ok(text) => text,
            Err(e) => {
                // Whatever failed, one answer, and it uses one of the token's attempts.
                let effects = stage_failed(staged, card, "decryption_failed");
                self.store
                    .use_token_attempt(&token.id, now(), effects)
                    .await??;
                tracing::info!(card_id = %card.id, reason = e.0, "encrypted PIN refused");
                return Err(AppError::DecryptionFailed);
            }
        };
        let pan = self.card_pan(card).await?;
        let pin = match policy::check_text(&text, settings, &pan) {
            Ok(pin) => pin,
            Err(rejection) => {
                let reason = match rejection {
                    PinRejection::Invalid => "invalid_pin",
                    PinRejection::Weak => "weak_pin",
                };
                let effects = stage_failed(staged, card, reason);
                self.store
                    .use_token_attempt(&token.id, now(), effects)
                    .await??;
                tracing::info!(card_id = %card.id, "PIN refused by policy");
                return Err(DomainError::from(rejection).into());
            }
        };
        let (key_version, block) = self.keys.encipher_pin(&pin, &pan)?;
        drop((pin, text));
        let write = PinWrite {
            block,
            key_version,
            set_by: SetBy::Cardholder,
        };
        if staged {
            return self.stage(caller, card, &token, write).await;
        }
        let effects = Effects {
            events: vec![card_event(
                card,
                EventType::PinChanged,
                json!({ "set_by": SetBy::Cardholder.as_str(), "source": caller.source() }),
            )],
            audit: Some(card_audit(
                &caller.actor(),
                "pin.changed",
                card,
                json!({
                    "set_by": SetBy::Cardholder.as_str(),
                    "token_id": token.id,
                    "was_blocked": card.pin_blocked,
                }),
            )),
        };
        self.store
            .redeem_token(&token.id, Some(PinChange::Set(write)), now(), effects)
            .await??;
        tracing::info!(card_id = %card.id, actor = %caller.name(), "PIN changed");
        Ok(SetOutcome::Set)
    }

    /// Staged mode: redeems the token and stages the PIN until the token's
    /// expiry, replacing whatever was staged before.
    async fn stage(
        &self,
        caller: &Caller,
        card: &CardRow,
        token: &TokenRow,
        write: PinWrite,
    ) -> AppResult<SetOutcome> {
        let expires_at = rfc3339(token.expires_at);
        let effects = Effects {
            events: vec![card_event(
                card,
                EventType::PinStaged,
                json!({ "expires_at": expires_at }),
            )],
            audit: Some(card_audit(
                &caller.actor(),
                "pin.staged",
                card,
                json!({
                    "token_id": token.id,
                    "expires_at": expires_at,
                    "replaced": card.has_staged_pin(now()),
                }),
            )),
        };
        let change = PinChange::Stage {
            pin: write,
            expires_at: token.expires_at,
        };
        self.store
            .redeem_token(&token.id, Some(change), now(), effects)
            .await??;
        tracing::info!(card_id = %card.id, actor = %caller.name(), "PIN staged");
        Ok(SetOutcome::Staged)
    }

    /// Staged mode: makes the staged PIN the card's PIN.
    pub async fn commit_staged_pin(&self, caller: &Caller, card_id: &str) -> AppResult<()> {
        self.find_card(caller, card_id).await?;
        let actor = caller.actor();
        let committed = self
            .store
            .commit_staged_pin(&caller.program.id, card_id, now(), move |before| Effects {
                events: vec![card_event(
                    before,
                    EventType::PinChanged,
                    json!({ "set_by": SetBy::Cardholder.as_str(), "source": "commit" }),
                )],
                audit: Some(card_audit(
                    &actor,
                    "pin.changed",
                    before,
                    json!({
                        "set_by": SetBy::Cardholder.as_str(),
                        "token_id": before.staged_token_id,
                        "staged": true,
                        "was_blocked": before.pin_blocked,
                    }),
                )),
            })
            .await?;
        if !committed {
            return Err(AppError::NothingStaged);
        }
        tracing::info!(card_id = %card_id, actor = %caller.name(), "staged PIN committed");
        Ok(())
    }

    /// Reveals `card`'s PIN with a `reveal_pin` token. The PIN is read (and
    /// encrypted) before the token is spent, so a failure cannot waste it.
    pub async fn reveal_pin(
        &self,
        caller: &Caller,
        card: &CardRow,
        token: &str,
        to: RevealTo,
    ) -> AppResult<Revealed> {
        self.reveal_pin_verified_by(caller, card, token, to, None)
            .await
    }

    /// [`Self::reveal_pin`], with how the cardholder was verified named at
    /// the reveal (Marqeta's `/pins/reveal`) rather than, or as well as, when
    /// the token was made: the method named here is the one recorded.
    pub async fn reveal_pin_verified_by(
        &self,
        caller: &Caller,
        card: &CardRow,
        token: &str,
        to: RevealTo,
        method: Option<String>,
    ) -> AppResult<Revealed> {
        let settings = &caller.program.settings;
        if !settings.reveal_enabled {
            return Err(AppError::RevealDisabled);
        }
        let token = self.usable_token(card, token, TokenType::RevealPin).await?;
        if let Some(m) = &method {
            super::tokens::check_method(m)?;
        }
        let Some(method) = method.or_else(|| token.cvm.clone()) else {
            return Err(AppError::Invalid(
                "`cardholder_verification_method` is required".into(),
            ));
        };
        if matches!(to, RevealTo::Clear) && !settings.allow_plaintext_reveal {
            return Err(AppError::PlaintextNotAllowed(
                "this program reveals PINs only encrypted to a `device_key`",
            ));
        }
        let device = match &to {
            RevealTo::Device(jwk) => Some(DeviceKey::from_jwk(jwk).map_err(AppError::Invalid)?),
            RevealTo::Clear => None,
        };
        let pan = self.card_pan(card).await?;
        let pin = self.card_pin(card, &pan).await?;
        let (revealed, to) = match device {
            Some(device) => {
                let jwe = self.encrypt_for_device(&device, pin.expose(), &card.id)?;
                (Revealed::Encrypted(jwe), "device_key")
            }
            None => (Revealed::Clear(pin.expose()), "clear"),
        };
        drop(pin);
        self.store
            .redeem_token(
                &token.id,
                None,
                now(),
                revealed_effects(caller, card, &token, &method, to),
            )
            .await??;
        let cvm = method.as_str();
        match revealed {
            Revealed::Encrypted(_) => {
                tracing::info!(card_id = %card.id, actor = %caller.name(), cvm, "PIN revealed to a device key");
            }
            Revealed::Clear(_) => {
                tracing::info!(card_id = %card.id, actor = %caller.name(), cvm, "PIN revealed in clear");
            }
        }
        Ok(revealed)
    }

    /// Unblocks the PIN: resets the fail count and reactivates a card PIN
    /// blocking made inactive. The note goes to the audit trail.
    pub async fn unblock_pin(
        &self,
        caller: &Caller,
        card_id: &str,
        note: UnblockNote,
    ) -> AppResult<CardRow> {
        for (name, value) in [
            ("description", &note.description),
            ("updated_by", &note.updated_by),
        ] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 500) {
                return Err(AppError::Invalid(format!(
                    "`{name}` must be at most 500 characters"
                )));
            }
            // The text goes to the audit trail, where a card number must never be.
            if value.as_deref().is_some_and(crate::domain::looks_like_pan) {
                return Err(AppError::Invalid(format!(
                    "`{name}` must not contain a card number"
                )));
            }
        }
        let actor = caller.actor();
        let card = self
            .store
            .unblock_pin(&caller.program.id, card_id, now(), move |before, after| {
                // Every reset, blocked or not (Spidr's `card.resetPin`);
                // `pin.unblocked` only where the PIN was blocked.
                let mut events = vec![card_event(
                    after,
                    EventType::PinFailCountReset,
                    json!({ "fail_count_before": before.fail_count, "was_blocked": before.pin_blocked }),
                )];
                if before.pin_blocked {
                    events.push(card_event(
                        after,
                        EventType::PinUnblocked,
                        json!({ "reason": "unblock" }),
                    ));
                }
                Effects {
                    events,
                    audit: Some(card_audit(
                        &actor,
                        "pin.unblocked",
                        after,
                        json!({
                            "was_blocked": before.pin_blocked,
                            "fail_count_before": before.fail_count,
                            "card_reactivated": before.inactive_by_block,
                            "description": note.description.clone(),
                            "updated_by": note.updated_by.clone(),
                        }),
                    )),
                }
            })
            .await?
            .ok_or(AppError::NotFound("card"))?;
        // The free text stays out of the log; the audit trail records it.
        tracing::info!(card_id = %card_id, actor = %caller.name(), "PIN unblocked");
        Ok(card)
    }
}

/// Staged mode: what a refused set attempt writes besides using one of the
/// token's attempts (`pin.stage_failed`, with the reason's error code). In
/// direct mode a refusal has no event.
fn stage_failed(staged: bool, card: &CardRow, reason: &str) -> Effects {
    if !staged {
        return Effects::default();
    }
    Effects {
        events: vec![card_event(
            card,
            EventType::PinStageFailed,
            json!({ "reason": reason }),
        )],
        audit: None,
    }
}

/// The event and audit record of a reveal; `to` is `device_key` (encrypted to
/// the cardholder's device) or `clear` (to the caller).
fn revealed_effects(
    caller: &Caller,
    card: &CardRow,
    token: &TokenRow,
    method: &str,
    to: &str,
) -> Effects {
    Effects {
        events: vec![card_event(
            card,
            EventType::PinRevealed,
            json!({ "cardholder_verification_method": method, "to": to }),
        )],
        audit: Some(card_audit(
            &caller.actor(),
            "pin.revealed",
            card,
            json!({
                "token_id": token.id,
                "cardholder_verification_method": method,
                "to": to,
            }),
        )),
    }
}
