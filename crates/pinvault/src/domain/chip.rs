//! Chip cards: the offline PIN the card's chip checks (API.md "Chip cards: the
//! offline PIN (EMV)"). A PIN changed anywhere else reaches the chip only
//! through an issuer script in the answer to a later online authorization, so
//! a chip card carries what its chip still has to be told.

use super::time::Timestamp;

/// The cryptogram version: it fixes the card key derivation, the secure
/// messaging session keys and the chip's PIN block (the `emv` crate's).
pub use emv::Cvn;

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

impl Command {
    pub fn parse(text: &str) -> Option<Command> {
        [Command::ChangePin, Command::UnblockPin]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// An issuer script sent and not yet reported on: its 9F18 identifier (hex)
/// and the command it carries. Every host that asks for a script for the card
/// meanwhile gets this same identifier for this command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveScript {
    pub id: String,
    pub command: Command,
}

/// What the chip said of a script (9F5B).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    NotPerformed,
    Failed,
    Successful,
}

/// A result that named the live script: what happened to its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub script: LiveScript,
    pub success: bool,
}

/// A chip card's offline-PIN state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipState {
    pub offline_pin: OfflinePin,
    pub pending_change_pin: bool,
    pub pending_unblock_pin: bool,
    pub last_script_at: Option<Timestamp>,
    pub last_script_result: Option<ScriptResult>,
    /// The script sent and not reported on yet.
    pub live_script: Option<LiveScript>,
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
            live_script: None,
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
            // A script made before carries the PIN before: its success must
            // not count as this one's.
            live_script: None,
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

    /// The host read from the chip that its PIN try counter ran out.
    pub fn offline_blocked(&self) -> ChipState {
        ChipState {
            offline_pin: OfflinePin::Blocked,
            ..self.clone()
        }
    }

    /// Applies what the chip reported (9F5B) of scripts, by identifier: only
    /// a result naming the live script counts. Success ends its command (the
    /// offline PIN is then in sync: both commands reset the try counter, and
    /// a change sets the card's PIN); failure keeps the command pending for a
    /// fresh script. "Not performed" changes nothing.
    pub fn reported(
        &self,
        results: &[(String, Reported)],
        at: Timestamp,
    ) -> (ChipState, Option<Settled>) {
        let Some(live) = &self.live_script else {
            return (self.clone(), None);
        };
        let Some((_, what)) = results
            .iter()
            .find(|(id, r)| *id == live.id && *r != Reported::NotPerformed)
        else {
            return (self.clone(), None);
        };
        let success = *what == Reported::Successful;
        let mut next = ChipState {
            live_script: None,
            last_script_at: Some(at),
            last_script_result: Some(if success {
                ScriptResult::Success
            } else {
                ScriptResult::Failed
            }),
            ..self.clone()
        };
        if success {
            match live.command {
                Command::ChangePin => next.pending_change_pin = false,
                Command::UnblockPin => next.pending_unblock_pin = false,
            }
            if !next.pending_change_pin {
                next.offline_pin = OfflinePin::InSync;
            }
        }
        (
            next,
            Some(Settled {
                script: live.clone(),
                success,
            }),
        )
    }

    /// The script to send for the first pending command: the live one when it
    /// carries that command (so concurrent hosts send one command between
    /// them), else a new one with `new_id`. `None`: nothing pending.
    pub fn next_script(&self, new_id: &str) -> Option<(ChipState, LiveScript)> {
        let command = *self.pending_commands().first()?;
        let script = match &self.live_script {
            Some(live) if live.command == command => live.clone(),
            _ => LiveScript {
                id: new_id.to_owned(),
                command,
            },
        };
        let next = ChipState {
            live_script: Some(script.clone()),
            ..self.clone()
        };
        Some((next, script))
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
            assert_eq!(Cvn::parse(c.as_str()).ok(), Some(c));
        }
        assert!(Cvn::parse("visa_17").is_err());
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
    fn a_script_is_live_until_its_result_and_only_its_result_counts() {
        let s = ChipState::issued().pin_changed();
        let (s, live) = s.next_script("00000001").unwrap();
        assert_eq!(live.command, Command::ChangePin);
        // A second host meanwhile: the same script id.
        let (s2, again) = s.next_script("00000002").unwrap();
        assert_eq!(again, live);
        assert_eq!(s2, s);
        // Results for other ids, or not performed: nothing changes.
        let other = [
            ("00000009".to_owned(), Reported::Successful),
            (live.id.clone(), Reported::NotPerformed),
        ];
        assert_eq!(s.reported(&other, 5).0, s);
        // Success ends the command.
        let (done, settled) = s.reported(&[(live.id.clone(), Reported::Successful)], 7);
        assert!(settled.unwrap().success);
        assert_eq!(done.pending_commands(), []);
        assert_eq!(done.offline_pin, OfflinePin::InSync);
        assert_eq!(
            (done.last_script_at, done.last_script_result),
            (Some(7), Some(ScriptResult::Success))
        );
        assert_eq!(done.next_script("00000003"), None);
        // Failure keeps it pending for a fresh script.
        let (failed, settled) = s.reported(&[(live.id.clone(), Reported::Failed)], 8);
        assert!(!settled.unwrap().success);
        assert_eq!(failed.pending_commands(), [Command::ChangePin]);
        assert_eq!(failed.next_script("00000004").unwrap().1.id, "00000004");
    }

    #[test]
    fn a_pin_change_makes_an_earlier_script_dead() {
        let (s, live) = ChipState::issued()
            .pin_changed()
            .next_script("0000000A")
            .unwrap();
        let changed_again = s.pin_changed();
        assert_eq!(changed_again.live_script, None);
        let (after, settled) = changed_again.reported(&[(live.id, Reported::Successful)], 9);
        assert_eq!(settled, None, "the old script's success is not this PIN's");
        assert_eq!(after.pending_commands(), [Command::ChangePin]);
    }

    #[test]
    fn an_unblock_success_brings_a_blocked_chip_back() {
        let s = ChipState::issued().offline_blocked().unblock_requested();
        let (s, live) = s.next_script("000000AA").unwrap();
        assert_eq!(live.command, Command::UnblockPin);
        let (done, _) = s.reported(&[(live.id, Reported::Successful)], 3);
        assert_eq!(done.offline_pin, OfflinePin::InSync);
        assert_eq!(done.pending_commands(), []);
    }

    #[test]
    fn sequence_numbers_are_two_digits() {
        assert!(valid_pan_sequence_number("00"));
        for bad in ["0", "000", "a1", ""] {
            assert!(!valid_pan_sequence_number(bad), "{bad}");
        }
    }
}
