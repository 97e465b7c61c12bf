//! A card's status and its PIN's try counter: every rule that moves them,
//! stated once. The store applies what these functions decide as one
//! compare-and-set on the card's row (the row must still be in the state the
//! decision was made from), so the rules hold under any concurrency without
//! being written again in SQL.

use pinblock::Pan;

use super::time::Timestamp;

/// The prefix of a card's id.
pub const CARD_PREFIX: &str = "card_";

/// A card number: 12 to 19 digits, Luhn-valid (`None`: not one).
pub fn parse_pan(text: &str) -> Option<Pan> {
    if !(12..=19).contains(&text.len()) {
        return None;
    }
    Pan::new(text).ok().filter(Pan::luhn_valid)
}

/// An expiry, `YYYY-MM` with a month from 01 to 12.
pub fn valid_expiry(text: &str) -> bool {
    let Some((y, m)) = text.split_once('-') else {
        return false;
    };
    y.len() == 4
        && m.len() == 2
        && y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
        && m.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
}

/// An external id: 1 to 255 characters, none of them a control character.
pub fn valid_external_id(text: &str) -> bool {
    !text.is_empty() && text.chars().count() <= 255 && !text.chars().any(char::is_control)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardStatus {
    Active,
    Inactive,
    Suspended,
}

impl CardStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "active",
            CardStatus::Inactive => "inactive",
            CardStatus::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(CardStatus::Active),
            "inactive" => Some(CardStatus::Inactive),
            "suspended" => Some(CardStatus::Suspended),
            _ => None,
        }
    }
}

/// Who chose a card's PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetBy {
    Random,
    Issuer,
    Cardholder,
}

impl SetBy {
    pub fn as_str(self) -> &'static str {
        match self {
            SetBy::Random => "random",
            SetBy::Issuer => "issuer",
            SetBy::Cardholder => "cardholder",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "random" => Some(SetBy::Random),
            "issuer" => Some(SetBy::Issuer),
            "cardholder" => Some(SetBy::Cardholder),
            _ => None,
        }
    }
}

/// The part of a card that PIN tries, unblocking, a new PIN and status
/// changes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinState {
    pub status: CardStatus,
    /// The card became inactive because its PIN was blocked: reactivating it
    /// unblocks the PIN, and unblocking the PIN reactivates it.
    pub inactive_by_block: bool,
    pub fail_count: u32,
    pub pin_blocked: bool,
    pub last_failed_at: Option<Timestamp>,
}

/// Why an entered PIN is not checked; nothing is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unverifiable {
    /// Not active for another reason than PIN blocking.
    CardInactive,
    Blocked,
}

/// A counted wrong PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinFailure {
    pub fail_count: u32,
    /// This failure reached `max_tries` and blocked the PIN.
    pub blocked: bool,
}

impl PinState {
    /// A wrong PIN. A blocked PIN counts nothing (`None`). Otherwise the count
    /// goes up by one; the try that reaches `max_tries` blocks the PIN, and an
    /// active card becomes inactive, marked as made so by blocking.
    pub fn failed(self, max_tries: u32, now: Timestamp) -> Option<(PinState, PinFailure)> {
        if self.pin_blocked {
            return None;
        }
        let fail_count = self.fail_count.saturating_add(1);
        let blocked = fail_count >= max_tries;
        let deactivated = blocked && self.status == CardStatus::Active;
        let next = PinState {
            status: if deactivated {
                CardStatus::Inactive
            } else {
                self.status
            },
            inactive_by_block: self.inactive_by_block || deactivated,
            fail_count,
            pin_blocked: blocked,
            last_failed_at: Some(now),
        };
        Some((
            next,
            PinFailure {
                fail_count,
                blocked,
            },
        ))
    }

    /// A right PIN resets the count. `None`: nothing to write (no failure is
    /// counted), or refused: a match never unblocks a blocked PIN.
    pub fn matched(self) -> Option<PinState> {
        (!self.pin_blocked && self.fail_count > 0).then_some(PinState {
            fail_count: 0,
            ..self
        })
    }

    /// Unblocking (and what a new PIN does to the counter): the count is reset,
    /// the PIN unblocked, and a card that blocking made inactive is active again.
    pub fn unblocked(self) -> PinState {
        PinState {
            status: if self.inactive_by_block {
                CardStatus::Active
            } else {
                self.status
            },
            inactive_by_block: false,
            fail_count: 0,
            pin_blocked: false,
            last_failed_at: self.last_failed_at,
        }
    }

    /// A new PIN (set, or a staged one committed): as [`Self::unblocked`].
    pub fn new_pin(self) -> PinState {
        self.unblocked()
    }

    /// A status the program chose. Reactivating a card that PIN blocking made
    /// inactive also unblocks its PIN; any chosen status is the program's, no
    /// longer blocking's.
    pub fn with_status(self, status: CardStatus) -> PinState {
        if status == CardStatus::Active && self.inactive_by_block {
            PinState {
                status,
                ..self.unblocked()
            }
        } else {
            PinState {
                status,
                inactive_by_block: false,
                ..self
            }
        }
    }

    /// Why a PIN entered now is not checked (`None`: it is). A card that is
    /// not active for another reason than PIN blocking (suspended, or made
    /// inactive by the program) comes first; then a blocked PIN.
    pub fn refuses_verification(self) -> Option<Unverifiable> {
        if self.status != CardStatus::Active && !self.inactive_by_block {
            Some(Unverifiable::CardInactive)
        } else if self.pin_blocked {
            Some(Unverifiable::Blocked)
        } else {
            None
        }
    }

    /// The tries left before the PIN blocks.
    pub fn remaining_tries(self, max_tries: u32) -> u32 {
        if self.pin_blocked {
            0
        } else {
            max_tries.saturating_sub(self.fail_count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn card_inputs() {
        assert!(parse_pan("4111111111111111").is_some());
        assert!(parse_pan("4111111111111112").is_none());
        assert!(parse_pan("41111111111").is_none());
        assert!(parse_pan("41111111111111111111").is_none());
        assert!(parse_pan("4111 1111 1111 1111").is_none());
        assert!(valid_expiry("2029-12") && valid_expiry("2030-01"));
        for bad in [
            "2029-13",
            "2029-00",
            "29-12",
            "2029-1",
            "2029/12",
            "２０２９-12",
        ] {
            assert!(!valid_expiry(bad), "{bad}");
        }
        assert!(valid_external_id("cust-1"));
        assert!(!valid_external_id("") && !valid_external_id("a\nb"));
        assert!(!valid_external_id(&"x".repeat(256)) && valid_external_id(&"é".repeat(255)));
    }

    fn status() -> impl Strategy<Value = CardStatus> {
        prop_oneof![
            Just(CardStatus::Active),
            Just(CardStatus::Inactive),
            Just(CardStatus::Suspended)
        ]
    }

    fn state() -> impl Strategy<Value = PinState> {
        (status(), any::<bool>(), 0u32..12, any::<bool>()).prop_map(
            |(status, by_block, fail_count, pin_blocked)| PinState {
                status,
                // Only an inactive card is inactive by blocking.
                inactive_by_block: by_block && status == CardStatus::Inactive,
                fail_count,
                pin_blocked,
                last_failed_at: None,
            },
        )
    }

    proptest! {
        #[test]
        fn failures_block_at_exactly_max_tries(max in 1u32..10, start in state()) {
            let mut s = PinState { pin_blocked: false, fail_count: 0, ..start };
            for n in 1..=max {
                let (next, f) = s.failed(max, 100).ok_or(TestCaseError::fail("counted"))?;
                prop_assert_eq!(f.fail_count, n);
                prop_assert_eq!(f.blocked, n == max);
                prop_assert_eq!(next.pin_blocked, n == max);
                prop_assert_eq!(next.remaining_tries(max), max - n);
                s = next;
            }
            // Once blocked, nothing more is counted.
            prop_assert!(s.failed(max, 101).is_none());
            prop_assert_eq!(s.fail_count, max);
        }

        #[test]
        fn blocking_deactivates_only_an_active_card(max in 1u32..10, start in state()) {
            let s = PinState { pin_blocked: false, fail_count: max - 1, ..start };
            let (next, f) = s.failed(max, 7).ok_or(TestCaseError::fail("counted"))?;
            prop_assert!(f.blocked);
            prop_assert_eq!(next.last_failed_at, Some(7));
            if start.status == CardStatus::Active {
                prop_assert_eq!(next.status, CardStatus::Inactive);
                prop_assert!(next.inactive_by_block);
            } else {
                prop_assert_eq!(next.status, start.status);
                prop_assert_eq!(next.inactive_by_block, start.inactive_by_block);
            }
        }

        #[test]
        fn unblocking_undoes_blocking(max in 1u32..10, start in state()) {
            let active = PinState { status: CardStatus::Active, inactive_by_block: false, pin_blocked: false, fail_count: max - 1, ..start };
            let (blocked, _) = active.failed(max, 1).ok_or(TestCaseError::fail("counted"))?;
            let back = blocked.unblocked();
            prop_assert_eq!(back.status, CardStatus::Active);
            prop_assert!(!back.pin_blocked && !back.inactive_by_block);
            prop_assert_eq!(back.fail_count, 0);
            // Reactivating does the same.
            prop_assert_eq!(blocked.with_status(CardStatus::Active), back);
            // A suspension is the program's choice: the PIN stays blocked.
            let suspended = blocked.with_status(CardStatus::Suspended);
            prop_assert!(suspended.pin_blocked && !suspended.inactive_by_block);
            // And reactivating then does not unblock.
            prop_assert!(suspended.with_status(CardStatus::Active).pin_blocked);
        }

        #[test]
        fn a_match_resets_but_never_unblocks(s in state()) {
            match s.matched() {
                Some(next) => {
                    prop_assert!(!s.pin_blocked && s.fail_count > 0);
                    prop_assert_eq!(next, PinState { fail_count: 0, ..s });
                }
                None => prop_assert!(s.pin_blocked || s.fail_count == 0),
            }
        }

        #[test]
        fn only_an_active_card_or_one_blocking_made_inactive_is_checked(s in state()) {
            let refused = s.refuses_verification();
            let inactive = s.status != CardStatus::Active && !s.inactive_by_block;
            prop_assert_eq!(refused == Some(Unverifiable::CardInactive), inactive);
            prop_assert_eq!(refused == Some(Unverifiable::Blocked), !inactive && s.pin_blocked);
            prop_assert_eq!(refused.is_none(), !inactive && !s.pin_blocked);
        }

        #[test]
        fn a_new_pin_unblocks_and_reactivates(s in state()) {
            let next = s.new_pin();
            prop_assert!(!next.pin_blocked && next.fail_count == 0 && !next.inactive_by_block);
            let expected = if s.inactive_by_block { CardStatus::Active } else { s.status };
            prop_assert_eq!(next.status, expected);
        }
    }
}
