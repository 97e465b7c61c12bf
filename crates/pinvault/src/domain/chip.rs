//! Chip cards: the offline PIN the card's chip checks (API.md "Chip cards: the
//! offline PIN (EMV)"). A PIN changed anywhere else reaches the chip only
//! through an issuer script in the answer to a later online authorization, so
//! a chip card carries what its chip still has to be told.

use super::time::Timestamp;

/// The cryptogram version: it fixes the card key derivation, the secure
/// messaging session keys and the chip's PIN block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cvn {
    Visa10,
    Visa18,
    Visa22,
    Mastercard16,
    Mastercard17,
    Mastercard20,
    Mastercard21,
}

impl Cvn {
    pub const ALL: [Cvn; 7] = [
        Cvn::Visa10,
        Cvn::Visa18,
        Cvn::Visa22,
        Cvn::Mastercard16,
        Cvn::Mastercard17,
        Cvn::Mastercard20,
        Cvn::Mastercard21,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cvn::Visa10 => "visa_10",
            Cvn::Visa18 => "visa_18",
            Cvn::Visa22 => "visa_22",
            Cvn::Mastercard16 => "mastercard_16",
            Cvn::Mastercard17 => "mastercard_17",
            Cvn::Mastercard20 => "mastercard_20",
            Cvn::Mastercard21 => "mastercard_21",
        }
    }

    pub fn parse(text: &str) -> Option<Cvn> {
        Cvn::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// What the chip's offline PIN is, as far as the issuer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfflinePin {
    /// The chip holds the card's PIN.
    InSync,
    /// The PIN changed; the chip learns it from the next script that succeeds.
    UpdatePending,
    /// The host read from the chip that its PIN try counter ran out.
    Blocked,
}

impl OfflinePin {
    pub fn as_str(self) -> &'static str {
        match self {
            OfflinePin::InSync => "in_sync",
            OfflinePin::UpdatePending => "update_pending",
            OfflinePin::Blocked => "blocked",
        }
    }

    pub fn parse(text: &str) -> Option<OfflinePin> {
        [
            OfflinePin::InSync,
            OfflinePin::UpdatePending,
            OfflinePin::Blocked,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// How the last issuer script the chip reported on ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptResult {
    Success,
    Failed,
}

impl ScriptResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptResult::Success => "success",
            ScriptResult::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ScriptResult> {
        match text {
            "success" => Some(ScriptResult::Success),
            "failed" => Some(ScriptResult::Failed),
            _ => None,
        }
    }
}

/// A command the chip still has to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    ChangePin,
    UnblockPin,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::ChangePin => "change_pin",
            Command::UnblockPin => "unblock_pin",
        }
    }
}

/// A chip card's offline-PIN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipState {
    pub offline_pin: OfflinePin,
    pub pending_change_pin: bool,
    pub pending_unblock_pin: bool,
    pub last_script_at: Option<Timestamp>,
    pub last_script_result: Option<ScriptResult>,
}

impl ChipState {
    /// A new chip card: its chip was personalised with the card's PIN.
    pub fn issued() -> ChipState {
        ChipState {
            offline_pin: OfflinePin::InSync,
            pending_change_pin: false,
            pending_unblock_pin: false,
            last_script_at: None,
            last_script_result: None,
        }
    }

    /// After any change of the card's PIN: the chip must be told, and a PIN
    /// change also resets the chip's try counter, so no unblock is needed.
    pub fn pin_changed(&self) -> ChipState {
        ChipState {
            offline_pin: match self.offline_pin {
                OfflinePin::Blocked => OfflinePin::Blocked,
                _ => OfflinePin::UpdatePending,
            },
            pending_change_pin: true,
            pending_unblock_pin: false,
            ..self.clone()
        }
    }

    /// After the program asked to unblock the chip's offline PIN. A pending
    /// PIN change unblocks it already: nothing more is pending then.
    pub fn unblock_requested(&self) -> ChipState {
        ChipState {
            pending_unblock_pin: !self.pending_change_pin,
            ..self.clone()
        }
    }

    /// What the chip still has to be sent, change first.
    pub fn pending_commands(&self) -> Vec<Command> {
        let mut out = Vec::new();
        if self.pending_change_pin {
            out.push(Command::ChangePin);
        }
        if self.pending_unblock_pin {
            out.push(Command::UnblockPin);
        }
        out
    }
}

/// A PAN sequence number (DE 23 / tag 5F34): two digits.
pub fn valid_pan_sequence_number(text: &str) -> bool {
    text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for c in Cvn::ALL {
            assert_eq!(Cvn::parse(c.as_str()), Some(c));
        }
        assert_eq!(Cvn::parse("visa_17"), None);
        for o in [
            OfflinePin::InSync,
            OfflinePin::UpdatePending,
            OfflinePin::Blocked,
        ] {
            assert_eq!(OfflinePin::parse(o.as_str()), Some(o));
        }
        for r in [ScriptResult::Success, ScriptResult::Failed] {
            assert_eq!(ScriptResult::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn a_pin_change_supersedes_an_unblock() {
        let s = ChipState::issued();
        assert!(s.pending_commands().is_empty());
        let unblock = s.unblock_requested();
        assert_eq!(unblock.pending_commands(), [Command::UnblockPin]);
        let changed = unblock.pin_changed();
        assert_eq!(changed.pending_commands(), [Command::ChangePin]);
        assert_eq!(changed.offline_pin, OfflinePin::UpdatePending);
        assert_eq!(
            changed.unblock_requested(),
            changed,
            "a pending change unblocks already"
        );
    }

    #[test]
    fn a_blocked_chip_stays_blocked_until_a_script_succeeds() {
        let blocked = ChipState {
            offline_pin: OfflinePin::Blocked,
            ..ChipState::issued()
        };
        assert_eq!(blocked.pin_changed().offline_pin, OfflinePin::Blocked);
        assert_eq!(
            blocked.unblock_requested().pending_commands(),
            [Command::UnblockPin]
        );
    }

    #[test]
    fn sequence_numbers_are_two_digits() {
        assert!(valid_pan_sequence_number("00"));
        for bad in ["0", "000", "a1", ""] {
            assert!(!valid_pan_sequence_number(bad), "{bad}");
        }
    }
}
