//! PIN verification at authorization time: the PIN a cardholder typed at a
//! terminal, as an ISO 9564 block under a zone key (or, in a test program's
//! sandbox, in clear), checked against the card's stored PIN, with tries counted
//! in the database.
//!
//! Try counting (the rules are `domain::card::PinState`): a card suspended or
//! made inactive by its program answers `card_inactive`, and a blocked PIN
//! `blocked`, without being checked; a mismatch counts one try, applied by the
//! store as a compare-and-set on the card's row, so concurrent failures stop at
//! exactly `max_tries`; the try that reaches `max_tries` blocks the PIN and
//! makes an active card inactive; a match resets the count, and needs no write
//! at all when no failure is recorded (the common case). A block that does not
//! decipher or parse counts nothing.
//!
//! Events: a counted failure writes `pin.verification_failed` (and, when it
//! blocks, `pin.blocked`) and its audit record in the transaction that counts
//! it. A match writes nothing (the hot path stays read-only), so it is neither
//! an event nor an audit record.

use pinblock::{Format, KeyAlgorithm, Pan, Pin};
use serde_json::json;

use super::zone_keys::ZoneKeyError;
use super::{App, ServiceError, card_audit, card_event};
use crate::audit::Actor;
use crate::domain::card::Unverifiable;
use crate::domain::time::now;
use crate::domain::zone_key::Usage;
use crate::events::{EventType, event};
use crate::keys::KeyKind;
use crate::store::{CardRow, Effects, PinFailure, PinWrite, Store};

/// What the terminal sent.
pub enum Entered<'a> {
    /// An enciphered ISO 9564 block under a zone key.
    Block {
        format: Format,
        block: &'a [u8],
        zone_key_id: &'a str,
    },
    /// The sandbox: the PIN in clear.
    Clear(Pin),
}

/// Names the format and key only: a PIN block, even enciphered, stays out of logs.
impl std::fmt::Debug for Entered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entered::Block {
                format,
                zone_key_id,
                ..
            } => write!(f, "Entered::Block({format}, {zone_key_id})"),
            Entered::Clear(_) => f.write_str("Entered::Clear"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Match,
    Mismatch,
    Blocked,
    /// Not active for another reason than PIN blocking: not checked.
    CardInactive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Match => "match",
            Outcome::Mismatch => "mismatch",
            Outcome::Blocked => "blocked",
            Outcome::CardInactive => "card_inactive",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub remaining_tries: u32,
    /// This verification blocked the PIN.
    pub blocked_now: bool,
}

#[derive(Debug)]
pub enum VerifyError {
    /// No zone key with this id granted to the card's program.
    UnknownZoneKey,
    /// The zone key is granted, but of usage `export`.
    ZoneKeyUsage,
    /// Format 4 was sent under a TDES zone key.
    FormatNeedsAes,
    /// The block is malformed or does not decipher to a PIN block of its format
    /// for this card's PAN. Counts no try.
    Decryption,
    Service(ServiceError),
}

super::service_errors!(VerifyError);

impl<S: Store> App<S> {
    /// Checks an entered PIN against `card`'s PIN (or, for a card migrated
    /// with legacy data, its PVV or IBM 3624 offset) and counts the try.
    /// `actor` (who asks, for the audit record) is only made when a try
    /// counts or a PIN is captured. `capture`: a legacy card's match stores
    /// the PIN (the program setting `migrate_legacy_pins`).
    pub async fn verify_pin(
        &self,
        card: &CardRow,
        pan: &Pan,
        max_tries: u32,
        entered: Entered<'_>,
        capture: bool,
        actor: impl FnOnce() -> Actor,
    ) -> Result<Verdict, VerifyError> {
        // How the PIN was entered, for the audit record of a failure (built then).
        let method = match &entered {
            Entered::Block {
                format,
                zone_key_id,
                ..
            } => Some((*format, *zone_key_id)),
            Entered::Clear(_) => None,
        };
        // Resolve the key and check the request's shape first: a request that
        // cannot be verified is refused the same way whether or not the PIN is
        // blocked.
        let entered = match entered {
            Entered::Block {
                format,
                block,
                zone_key_id,
            } => {
                let key = self
                    .zone_key_for(zone_key_id, &card.program_id, Usage::Verify)
                    .await
                    .map_err(|e| match e {
                        ZoneKeyError::NotFound => VerifyError::UnknownZoneKey,
                        ZoneKeyError::WrongUsage(_) => VerifyError::ZoneKeyUsage,
                        ZoneKeyError::Service(e) => VerifyError::Service(e),
                    })?;
                if format == Format::Iso4 && key.algorithm() != KeyAlgorithm::Aes {
                    return Err(VerifyError::FormatNeedsAes);
                }
                if let Some(refused) = card.pin_state().refuses_verification() {
                    return Ok(unverified(refused, card, max_tries));
                }
                pinblock::decipher(format, block, pan, &key).map_err(|_| VerifyError::Decryption)?
            }
            Entered::Clear(pin) => pin,
        };
        if let Some(refused) = card.pin_state().refuses_verification() {
            return Ok(unverified(refused, card, max_tries));
        }
        self.ensure_key(KeyKind::Pin, card.pin_key_version).await?;
        let stored = self
            .keys
            .decipher_pin(card.pin_key_version, &card.pin_block, pan)?;
        let (matched, entered) = match &card.legacy {
            None => (bool::from(stored.ct_eq(&entered)), None),
            Some(legacy) => (
                self.legacy_matches(card, legacy, pan, &entered, &stored)
                    .await?,
                Some(entered),
            ),
        };
        drop(stored);
        if let (true, true, Some(pin)) = (matched, capture, entered) {
            // A legacy card's first match: its PIN is stored from now on.
            let (key_version, block) = self.keys.encipher_pin(&pin, pan)?;
            drop(pin);
            let actor = actor();
            let effects = Effects {
                events: vec![card_event(
                    card,
                    EventType::PinChanged,
                    json!({ "set_by": card.pin_set_by.as_str(), "source": "migration" }),
                )],
                audit: Some(card_audit(
                    &actor,
                    "pin.migrated",
                    card,
                    json!({ "from": crate::domain::legacy::verification(card.legacy.as_ref()) }),
                )),
            };
            let write = PinWrite {
                block,
                key_version,
                set_by: card.pin_set_by,
            };
            if self
                .store
                .capture_legacy_pin(card, write, now(), effects)
                .await?
            {
                tracing::info!(card_id = %card.id, "legacy PIN captured: the card's PIN is stored from now on");
            }
            return Ok(Verdict {
                outcome: Outcome::Match,
                remaining_tries: max_tries,
                blocked_now: false,
            });
        }
        if matched {
            if card.fail_count > 0 && !self.store.reset_pin_failures(&card.id, now()).await? {
                // Blocked by concurrent failures since the card was read.
                return Ok(blocked());
            }
            return Ok(Verdict {
                outcome: Outcome::Match,
                remaining_tries: max_tries,
                blocked_now: false,
            });
        }
        let method = match method {
            Some((format, zone_key_id)) => {
                json!({ "method": "pin_block", "format": format.to_string(), "zone_key_id": zone_key_id })
            }
            None => json!({ "method": "sandbox" }),
        };
        let (program_id, card_id, actor) = (card.program_id.clone(), card.id.clone(), actor());
        let effects = move |f: PinFailure| {
            let remaining = max_tries.saturating_sub(f.fail_count);
            let mut events = vec![event(
                &program_id,
                &card_id,
                EventType::PinVerificationFailed,
                json!({ "fail_count": f.fail_count, "remaining_tries": remaining }),
            )];
            if f.blocked {
                events.push(event(
                    &program_id,
                    &card_id,
                    EventType::PinBlocked,
                    json!({ "fail_count": f.fail_count }),
                ));
            }
            let mut details = method.clone();
            details["fail_count"] = json!(f.fail_count);
            details["remaining_tries"] = json!(remaining);
            details["blocked"] = json!(f.blocked);
            Effects {
                events,
                audit: Some(actor.record(
                    if f.blocked {
                        "pin.blocked"
                    } else {
                        "pin.verification_failed"
                    },
                    Some(&program_id),
                    Some(&card_id),
                    details,
                )),
            }
        };
        match self
            .store
            .record_pin_failure(&card.id, max_tries, now(), effects)
            .await?
        {
            None => Ok(blocked()),
            Some(f) => Ok(Verdict {
                outcome: Outcome::Mismatch,
                remaining_tries: max_tries.saturating_sub(f.fail_count),
                blocked_now: f.blocked,
            }),
        }
    }
}

impl<S: Store> App<S> {
    /// Whether `entered` is the PIN a legacy card's PVV or offset (`value`,
    /// deciphered from where a PIN would be) was made from.
    async fn legacy_matches(
        &self,
        card: &CardRow,
        legacy: &crate::domain::legacy::Legacy,
        pan: &Pan,
        entered: &Pin,
        value: &Pin,
    ) -> Result<bool, VerifyError> {
        use crate::domain::legacy::Method;
        let unusable = |what: &str| {
            VerifyError::Service(ServiceError::Keys(crate::keys::KeyError::Integrity(
                format!(
                    "card {}: its legacy verification data cannot be checked ({what})",
                    card.id
                ),
            )))
        };
        let (row, key) = self
            .pvk(&card.program_id, &legacy.pvk_id)
            .await
            .map_err(|e| match e {
                super::error::AppError::Service(e) => VerifyError::Service(e),
                _ => unusable("its PIN verification key is gone"),
            })?;
        let digits = value.expose();
        let matched = match legacy.method {
            Method::VisaPvv => {
                let pvv: [u8; 4] = digits
                    .as_bytes()
                    .try_into()
                    .map_err(|_| unusable("a PVV is 4 digits"))?;
                let pvki = legacy.pvki.ok_or_else(|| unusable("no PVKI"))?;
                pinblock::pvv::verify_pvv(&key, pan, pvki, entered, &pvv)
            }
            Method::Ibm3624 => {
                let params = row.params.unwrap_or_default();
                pinblock::ibm3624::verify_offset(&key, pan, &params, entered, digits.as_bytes())
            }
        };
        match matched {
            Ok(m) => Ok(m),
            // A PIN shorter than the key's check length is not the PIN.
            Err(pinblock::Error::PinShorterThanCheck { .. }) => Ok(false),
            Err(e) => Err(unusable(&e.to_string())),
        }
    }
}

/// The answer to a PIN that is not checked: nothing is counted.
fn unverified(why: Unverifiable, card: &CardRow, max_tries: u32) -> Verdict {
    match why {
        Unverifiable::Blocked => blocked(),
        Unverifiable::CardInactive => Verdict {
            outcome: Outcome::CardInactive,
            remaining_tries: card.pin_state().remaining_tries(max_tries),
            blocked_now: false,
        },
    }
}

fn blocked() -> Verdict {
    Verdict {
        outcome: Outcome::Blocked,
        remaining_tries: 0,
        blocked_now: false,
    }
}
