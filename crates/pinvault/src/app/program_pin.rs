//! The program's own PIN calls without a control token, which the seed
//! platforms' APIs have (COMPAT.md): set a card's PIN (Thredd's
//! `POST /cards/{t}/pin`, in clear; Stripe's `pin[encrypted_number]`, a JWE)
//! and read it back (Thredd's `GET /cards/{t}/pin`), each under the same
//! program settings as v1 (`allow_plaintext_pin`, `reveal_enabled`,
//! `allow_plaintext_reveal`), the same PIN policy and the same events and
//! audit; and a card named by its id or its `external_id`.

use serde_json::json;
use zeroize::Zeroizing;

use super::error::{AppError, AppResult};
use super::pin::PinText;
use super::{App, Caller, card_audit, card_event};
use crate::domain::DomainError;
use crate::domain::card::CARD_PREFIX;
use crate::domain::ids::is_id;
use crate::domain::policy;
use crate::domain::time::now;
use crate::domain::token::{TokenError, TokenType};
use crate::events::EventType;
use crate::store::{CardRow, Effects, PinWrite, SetBy, Store};

impl<S: Store> App<S> {
    /// The program's card named by its id, or else by its `external_id`
    /// (`card_ambiguous` if several of the program's cards carry it; an
    /// `external_id` that looks like a card id is found too).
    pub async fn find_card_named(&self, caller: &Caller, name: &str) -> AppResult<CardRow> {
        if is_id(name, CARD_PREFIX) {
            if let Some(card) = self.store.get_card(&caller.program.id, name).await? {
                return Ok(card);
            }
        }
        if name.is_empty() || name.len() > 200 {
            return Err(AppError::NotFound("card"));
        }
        let (mut cards, _) = self
            .store
            .list_cards(&caller.program.id, Some(name), 2, None)
            .await?
            .ok_or(AppError::NotFound("card"))?;
        match cards.len() {
            1 => Ok(cards.remove(0)),
            0 => Err(AppError::NotFound("card")),
            _ => Err(AppError::ExternalIdAmbiguous),
        }
    }

    /// The program's card a presented token is for (Marqeta's calls name the
    /// token, not the card): `token_invalid` where the program has no card
    /// with such a token of `kind`. Whether it may still be used is for the
    /// use case it is presented to.
    pub async fn card_of_token(
        &self,
        caller: &Caller,
        presented: &str,
        kind: TokenType,
    ) -> AppResult<CardRow> {
        let token = self.presented_token(presented, kind).await?;
        Ok(self
            .store
            .get_card(&caller.program.id, &token.card_id)
            .await?
            .ok_or(TokenError::Invalid)?)
    }

    /// Sets `card`'s PIN as the program sends it, with no token: in clear
    /// only where the program has `allow_plaintext_pin`; a JWE as for a set
    /// with a token. The PIN is `set_by` `issuer`; it resets the fail count,
    /// unblocks the PIN and discards anything staged, as any new PIN does.
    pub async fn set_pin_directly(
        &self,
        caller: &Caller,
        card: &CardRow,
        pin: PinText,
    ) -> AppResult<()> {
        let settings = &caller.program.settings;
        let text = self.pin_digits(caller, card, pin).await?.map_err(|e| {
            tracing::info!(card_id = %card.id, reason = e.0, "encrypted PIN refused");
            AppError::DecryptionFailed
        })?;
        let pan = self.card_pan(card).await?;
        let pin = policy::check_text(&text, settings, &pan).map_err(|rejection| {
            tracing::info!(card_id = %card.id, "PIN refused by policy");
            AppError::Domain(DomainError::from(rejection))
        })?;
        let (key_version, block) = self.keys.encipher_pin(&pin, &pan)?;
        drop((pin, text, pan));
        let write = PinWrite {
            block,
            key_version,
            set_by: SetBy::Issuer,
        };
        let (actor, source) = (caller.actor(), caller.source());
        self.store
            .write_pin(&caller.program.id, &card.id, write, now(), move |before| {
                Effects {
                    events: vec![card_event(
                        before,
                        EventType::PinChanged,
                        json!({ "set_by": SetBy::Issuer.as_str(), "source": source }),
                    )],
                    audit: Some(card_audit(
                        &actor,
                        "pin.changed",
                        before,
                        json!({
                            "set_by": SetBy::Issuer.as_str(),
                            "token_id": null,
                            "was_blocked": before.pin_blocked,
                        }),
                    )),
                }
            })
            .await?
            .ok_or(AppError::NotFound("card"))?;
        tracing::info!(card_id = %card.id, actor = %caller.name(), "PIN set by the program");
        Ok(())
    }

    /// `card`'s PIN in clear to the program, with no token: only where the
    /// program has reveal on and `allow_plaintext_reveal`. Recorded as any
    /// reveal is (`pin.revealed`, `to` `clear`, no token).
    pub async fn reveal_pin_directly(
        &self,
        caller: &Caller,
        card: &CardRow,
    ) -> AppResult<Zeroizing<String>> {
        let settings = &caller.program.settings;
        if !settings.reveal_enabled {
            return Err(AppError::RevealDisabled);
        }
        if !settings.allow_plaintext_reveal {
            return Err(AppError::PlaintextNotAllowed(
                "this program does not reveal PINs in clear",
            ));
        }
        let pan = self.card_pan(card).await?;
        let pin = self.card_pin(card, &pan).await?;
        drop(pan);
        let effects = Effects {
            events: vec![card_event(
                card,
                EventType::PinRevealed,
                json!({ "cardholder_verification_method": null, "to": "clear" }),
            )],
            audit: Some(card_audit(
                &caller.actor(),
                "pin.revealed",
                card,
                json!({ "token_id": null, "cardholder_verification_method": null, "to": "clear" }),
            )),
        };
        self.store.record_effects(effects).await?;
        tracing::info!(card_id = %card.id, actor = %caller.name(), "PIN revealed in clear without a token");
        Ok(pin.expose())
    }
}
