//! PIN change at an ATM (API.md "PIN change at an ATM"): the current PIN,
//! checked exactly as verification checks it, then the new one, read from its
//! block only after a match and put under the program's PIN policy; kept 24
//! hours so the change can be reversed when the ATM never delivered the answer.

use pinblock::Format;
use serde_json::json;

use super::error::AppError;
use super::verify::{Entered, Outcome, Verdict, VerifyError};
use super::zone_keys::ZoneKeyError;
use super::{App, Caller, ServiceError, card_audit, card_event};
use crate::domain::DomainError;
use crate::domain::ids::new_id;
use crate::domain::policy;
use crate::domain::time::now;
use crate::domain::zone_key::Usage;
use crate::events::{EventType, event};
use crate::store::{Effects, PinChangeOutcome, PinChangeRow, PinWrite, SetBy, Store};

pub const CHANGE_PREFIX: &str = "pch_";

/// What the ATM sent: both PINs as blocks of one format under one zone key.
#[derive(Clone, Copy)]
pub struct AtmChange<'a> {
    pub format: Format,
    pub current: &'a [u8],
    pub new: &'a [u8],
    pub zone_key_id: &'a str,
}

/// Names the format and key only: PIN blocks stay out of logs.
impl std::fmt::Debug for AtmChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtmChange({}, {})", self.format, self.zone_key_id)
    }
}

/// The answer: the verification of the current PIN, and the change's id when
/// it matched and the new PIN was stored (`changed`).
#[derive(Debug, Clone)]
pub struct ChangeAnswer {
    pub verdict: Verdict,
    pub change_id: Option<String>,
}

/// Why a change was refused before anything but the try was counted.
#[derive(Debug)]
pub enum ChangeError {
    /// The current PIN's check refused it (as verification would).
    Verify(VerifyError),
    /// The new PIN: its block does not decipher (`decryption_failed`) or the
    /// policy refuses it (`invalid_pin`, `weak_pin`); or no such card.
    Refused(AppError),
}

impl From<ServiceError> for ChangeError {
    fn from(e: ServiceError) -> Self {
        ChangeError::Refused(AppError::Service(e))
    }
}

super::wraps!(ChangeError: Refused(AppError));

/// A change races at most this many PIN writes on its card before it gives up.
const RACES: usize = 4;

impl<S: Store> App<S> {
    /// Changes the card's PIN at an ATM. A mismatch counts a try, a blocked or
    /// inactive card answers without a check, as verification does. If
    /// another change lands between the check and the write, the current PIN
    /// is checked again against the PIN the card holds then.
    pub async fn change_pin_at_atm(
        &self,
        caller: &Caller,
        card_id: &str,
        sent: AtmChange<'_>,
    ) -> Result<ChangeAnswer, ChangeError> {
        let max_tries = u32::from(caller.program.settings.max_tries);
        for _ in 0..RACES {
            let card = self.find_card(caller, card_id).await?;
            let pan = self.card_pan(&card).await?;
            let current = Entered::Block {
                format: sent.format,
                block: sent.current,
                zone_key_id: sent.zone_key_id,
            };
            let verdict = self
                // A legacy card's PIN is captured on the match whatever
                // `migrate_legacy_pins` says: the change stores a new PIN
                // anyway, and its reversal puts back the PIN it matched.
                .verify_pin(&card, &pan, max_tries, current, true, || caller.actor())
                .await
                .map_err(ChangeError::Verify)?;
            if verdict.outcome != Outcome::Match {
                return Ok(ChangeAnswer {
                    verdict,
                    change_id: None,
                });
            }
            // The key was resolved (and granted) by the check above.
            let key = self
                .zone_key_for(sent.zone_key_id, &caller.program.id, Usage::Verify)
                .await
                .map_err(|e| match e {
                    ZoneKeyError::Service(e) => ChangeError::from(e),
                    _ => ChangeError::Verify(VerifyError::UnknownZoneKey),
                })?;
            let new = pinblock::decipher(sent.format, sent.new, &pan, &key)
                .map_err(|_| ChangeError::Verify(VerifyError::Decryption))?;
            policy::check(&new, &caller.program.settings, &pan)
                .map_err(|r| AppError::Domain(DomainError::from(r)))?;
            let (key_version, block) = self
                .keys
                .encipher_pin(&new, &pan)
                .map_err(ServiceError::from)?;
            drop((new, pan));
            let t = now();
            let change = PinChangeRow {
                id: new_id(CHANGE_PREFIX),
                program_id: card.program_id.clone(),
                card_id: card.id.clone(),
                previous: PinWrite {
                    block: card.pin_block.clone(),
                    key_version: card.pin_key_version,
                    set_by: card.pin_set_by,
                },
                new_pin_block: block.clone(),
                created_at: t,
                reversed_at: None,
            };
            let write = PinWrite {
                block,
                key_version,
                set_by: SetBy::Cardholder,
            };
            let change_id = change.id.clone();
            let effects = changed_effects(caller, &change_id, sent);
            match self
                .store
                .change_pin(change, write, effects)
                .await
                .map_err(ServiceError::from)?
            {
                PinChangeOutcome::Done => {
                    tracing::info!(card_id = %card.id, change_id = %change_id, "PIN changed at an ATM");
                    return Ok(ChangeAnswer {
                        verdict: Verdict {
                            outcome: Outcome::Match,
                            remaining_tries: max_tries,
                            blocked_now: false,
                        },
                        change_id: Some(change_id),
                    });
                }
                PinChangeOutcome::NotFound => return Err(AppError::NotFound("card").into()),
                // Another PIN write came first: check again against it.
                PinChangeOutcome::Moved => continue,
            }
        }
        Err(ServiceError::Store(crate::store::StoreError::Conflict(
            "the card's PIN kept changing while it was being changed; try again".into(),
        ))
        .into())
    }

    /// Puts back the PIN before the program's change `change_id` (within 24
    /// hours, when nothing has changed the PIN since).
    pub async fn reverse_pin_change(
        &self,
        caller: &Caller,
        change_id: &str,
    ) -> Result<(), AppError> {
        if !crate::domain::ids::is_id(change_id, CHANGE_PREFIX) {
            return Err(AppError::NotFound("PIN change"));
        }
        let actor = caller.actor();
        let effects = move |c: &PinChangeRow| Effects {
            events: vec![event(
                &c.program_id,
                &c.card_id,
                EventType::PinChangeReversed,
                json!({ "change_id": c.id }),
            )],
            audit: Some(actor.record(
                "pin.change_reversed",
                Some(&c.program_id),
                Some(&c.card_id),
                json!({ "change_id": c.id }),
            )),
        };
        match self
            .store
            .reverse_pin_change(&caller.program.id, change_id, now(), effects)
            .await?
        {
            PinChangeOutcome::Done => {
                tracing::info!(change_id = %change_id, "PIN change reversed");
                Ok(())
            }
            PinChangeOutcome::NotFound => Err(AppError::NotFound("PIN change")),
            PinChangeOutcome::Moved => Err(AppError::ReversalNotPossible),
        }
    }
}

/// `pin.changed` (`source` `atm`) and its audit record, for a change at an ATM.
fn changed_effects(
    caller: &Caller,
    change_id: &str,
    sent: AtmChange<'_>,
) -> impl Fn(&crate::store::CardRow) -> Effects + Send + Sync + 'static {
    let (actor, change_id) = (caller.actor(), change_id.to_owned());
    let (format, zone_key_id) = (sent.format.to_string(), sent.zone_key_id.to_owned());
    move |card| Effects {
        events: vec![card_event(
            card,
            EventType::PinChanged,
            json!({ "set_by": SetBy::Cardholder.as_str(), "source": "atm", "change_id": change_id }),
        )],
        audit: Some(card_audit(
            &actor,
            "pin.changed",
            card,
            json!({
                "set_by": SetBy::Cardholder.as_str(),
                "source": "atm",
                "change_id": change_id,
                "method": "pin_block",
                "format": format,
                "zone_key_id": zone_key_id,
                "was_blocked": card.pin_blocked,
            }),
        )),
    }
}
