//! Control tokens: made for one PIN operation on one card, and checked when
//! presented.

use serde_json::json;

use super::error::{AppError, AppResult};
use super::{App, Caller, after, card_audit, card_event};
use crate::domain::ids::{Secret, new_id};
use crate::domain::time::{now, rfc3339};
use crate::domain::token::{
    self, CARDHOLDER_VERIFICATION_METHODS, TOKEN_PREFIX, TokenError, TokenType,
};
use crate::events::EventType;
use crate::store::{CardRow, Created, Effects, IdemRow, Store, StoreResult, TokenRow};

/// A token made and not yet stored: the row, the secret to hand out once, and
/// what storing it writes besides.
#[derive(Debug)]
pub struct NewToken {
    pub row: TokenRow,
    pub secret: Secret,
    effects: Effects,
}

impl NewToken {
    /// The hosted widget's page for this token.
    pub fn widget_path(&self) -> String {
        let widget = match self.row.kind {
            TokenType::SetPin => "pin-set",
            TokenType::RevealPin => "pin-reveal",
        };
        format!("/widgets/{widget}?token={}", self.secret.expose())
    }
}

/// What a seed-compatible route (COMPAT.md) asks of a token beyond the v1 rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenOptions {
    /// A `set_pin` token whose PIN is staged whatever the program's
    /// `pin_set_mode` (Spidr's `pinChangeToken`).
    pub always_staged: bool,
    /// Lives at most this long, if the program's lifetime is longer (Enfuce's
    /// 30 seconds).
    pub max_ttl_s: Option<u32>,
    /// A `reveal_pin` token whose verification method is named at the reveal
    /// instead (Marqeta's `/pins/reveal`).
    pub method_at_reveal: bool,
}

impl<S: Store> App<S> {
    /// A token of `kind` for `card`: `cvm` (how the cardholder was verified)
    /// is required for a reveal, and reveal must be turned on. Older unused
    /// tokens of the type stop working when it is stored ([`Self::save_token`]).
    pub fn new_token(
        &self,
        caller: &Caller,
        card: &CardRow,
        kind: TokenType,
        cvm: Option<String>,
    ) -> AppResult<NewToken> {
        self.new_token_with(caller, card, kind, cvm, TokenOptions::default())
    }

    /// [`Self::new_token`], with what a compat route asks besides.
    pub fn new_token_with(
        &self,
        caller: &Caller,
        card: &CardRow,
        kind: TokenType,
        cvm: Option<String>,
        options: TokenOptions,
    ) -> AppResult<NewToken> {
        if let Some(m) = &cvm {
            check_method(m)?;
        }
        let settings = &caller.program.settings;
        let ttl = match kind {
            TokenType::SetPin => settings.set_token_ttl_s,
            TokenType::RevealPin => {
                if cvm.is_none() && !options.method_at_reveal {
                    return Err(AppError::Invalid(
                        "`cardholder_verification_method` is required for a reveal_pin token"
                            .into(),
                    ));
                }
                if !settings.reveal_enabled {
                    return Err(AppError::RevealDisabled);
                }
                settings.reveal_token_ttl_s
            }
        };
        let ttl = options.max_ttl_s.map_or(ttl, |max| ttl.min(max));
        let secret = Secret::generate(TOKEN_PREFIX);
        let row = TokenRow {
            id: new_id("pctid_"),
            token_hash: secret.hash(),
            card_id: card.id.clone(),
            kind,
            cvm: cvm.clone(),
            created_at: now(),
            expires_at: after(ttl),
            attempts_remaining: u32::from(settings.set_token_attempts),
            used_at: None,
            superseded_at: None,
            always_staged: options.always_staged && kind == TokenType::SetPin,
        };
        let expires_at = rfc3339(row.expires_at);
        let effects = Effects {
            events: vec![card_event(
                card,
                EventType::PinTokenCreated,
                json!({
                    "token_type": kind.as_str(),
                    "cardholder_verification_method": cvm,
                    "expires_at": expires_at,
                }),
            )],
            audit: Some(card_audit(
                &caller.actor(),
                "pin.token_created",
                card,
                json!({
                    "token_id": row.id,
                    "token_type": kind.as_str(),
                    "cardholder_verification_method": cvm,
                    "expires_at": expires_at,
                }),
            )),
        };
        Ok(NewToken {
            row,
            secret,
            effects,
        })
    }

    /// Stores a token made by [`Self::new_token`], with the idempotency record
    /// of the request that made it.
    pub async fn save_token(
        &self,
        caller: &Caller,
        token: NewToken,
        idem: Option<IdemRow>,
    ) -> StoreResult<Created> {
        let (card_id, kind) = (token.row.card_id.clone(), token.row.kind);
        let created = self
            .store
            .create_token(token.row, idem, token.effects)
            .await?;
        tracing::info!(card_id = %card_id, actor = %caller.name(), r#type = kind.as_str(), "control token created");
        Ok(created)
    }

    /// The stored token of `kind` a presented secret names (`token_invalid`
    /// for none), whatever its state.
    pub(super) async fn presented_token(
        &self,
        presented: &str,
        kind: TokenType,
    ) -> AppResult<TokenRow> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 200 {
            return Err(TokenError::Invalid.into());
        }
        Ok(self
            .store
            .find_token(Secret::from_presented(presented).hash())
            .await?
            .filter(|t| t.kind == kind)
            .ok_or(TokenError::Invalid)?)
    }

    /// The token presented for `card` and `kind`, if it may be used now
    /// (`domain::token::state`).
    pub async fn usable_token(
        &self,
        card: &CardRow,
        presented: &str,
        kind: TokenType,
    ) -> AppResult<TokenRow> {
        let row = Some(self.presented_token(presented, kind).await?)
            .filter(|t| t.card_id == card.id)
            .ok_or(TokenError::Invalid)?;
        token::state(
            row.used_at,
            row.superseded_at,
            row.expires_at,
            row.attempts_remaining,
            now(),
        )?;
        Ok(row)
    }
}

/// A cardholder verification method must be one of the seven.
pub fn check_method(method: &str) -> AppResult<()> {
    if CARDHOLDER_VERIFICATION_METHODS.contains(&method) {
        return Ok(());
    }
    Err(AppError::Invalid(format!(
        "`cardholder_verification_method` must be one of {}",
        CARDHOLDER_VERIFICATION_METHODS.join(", ")
    )))
}
