//! Issuer scripts for the chip's offline PIN: PIN CHANGE/UNBLOCK with secure
//! messaging (EMV Book 3 §6.5.10, Book 2 §9), wrapped in an issuer script
//! template `72`.
//!
//! - PIN CHANGE without the current PIN: `84 24 00 02 Lc` || enciphered PIN
//!   block || MAC (Lc = 24 for the Visa CVNs, whose encipherment makes the PIN
//!   block 16 bytes, 16 for the Mastercard CVNs).
//! - PIN UNBLOCK: `84 24 00 00 08` || MAC.
//!
//! The ICC master keys come from the issuer master keys, the PAN and the PAN
//! sequence number; the session keys from those with the ATC or the ARQC, and
//! the MAC covers `header || ATC || ARQC || enciphered data`, all as the CVN
//! says (see [`crate::cvn`]).

use core::fmt;

use zeroize::Zeroizing;

use crate::cvn::{MasterKeyDerivation, PinBlockFormat, SessionKeyDerivation};
use crate::kd::{common_session_key, icc_master_key_a, icc_master_key_b, visa_session_key};
use crate::mac::retail_mac;
use crate::pin::{iso9564_format2, vis_pin_block};
use crate::sm::encipher;
use crate::tlv::{ISSUER_SCRIPT_COMMAND, ISSUER_SCRIPT_ID, ISSUER_SCRIPT_TEMPLATE_2, push_header};
use crate::{Cvn, IssuerMasterKeys, Pan, Pin, Psn, TdesKey};

/// The card and the transaction a script is made for.
#[derive(Debug)]
pub struct ScriptContext<'a> {
    pub cvn: Cvn,
    pub keys: &'a IssuerMasterKeys,
    pub pan: &'a Pan,
    pub psn: Psn,
    /// 9F36 of the authorization.
    pub atc: [u8; 2],
    /// 9F26 of the authorization.
    pub arqc: [u8; 8],
}

/// One command APDU. `Debug` is redacted (it carries the enciphered PIN);
/// zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ScriptCommand(Zeroizing<Vec<u8>>);

/// A whole issuer script template (`72 …`), to put into DE 55 as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuerScript(Zeroizing<Vec<u8>>);

impl ScriptCommand {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl IssuerScript {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ScriptCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScriptCommand(<{} bytes>)", self.0.len())
    }
}

impl fmt::Debug for IssuerScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IssuerScript(<{} bytes>)", self.0.len())
    }
}

/// The card's ICC master key derived from one issuer master key, as the CVN says.
pub fn icc_master_key(cvn: Cvn, imk: &TdesKey, pan: &Pan, psn: Psn) -> TdesKey {
    match cvn.master_key_derivation() {
        MasterKeyDerivation::OptionA => icc_master_key_a(imk, pan, psn),
        MasterKeyDerivation::OptionB => icc_master_key_b(imk, pan, psn),
    }
}

/// A secure-messaging session key from an ICC master key (SMI or SMC), as the
/// CVN says.
pub fn sm_session_key(cvn: Cvn, icc_mk: &TdesKey, atc: &[u8; 2], arqc: &[u8; 8]) -> TdesKey {
    match cvn.session_key_derivation() {
        SessionKeyDerivation::VisaAtc => visa_session_key(icc_mk, atc),
        SessionKeyDerivation::CommonArqc => common_session_key(icc_mk, arqc),
    }
}

impl ScriptContext<'_> {
    fn session_key(&self, imk: &TdesKey) -> TdesKey {
        let icc_mk = icc_master_key(self.cvn, imk, self.pan, self.psn);
        sm_session_key(self.cvn, &icc_mk, &self.atc, &self.arqc)
    }

    /// `header || enciphered data || MAC`, the MAC over
    /// `header || ATC || ARQC || enciphered data` under the SMI session key.
    fn command(&self, header: [u8; 5], data: &[u8]) -> ScriptCommand {
        let sk_smi = self.session_key(&self.keys.smi);
        let mut mac_input = Vec::with_capacity(15 + data.len());
        mac_input.extend_from_slice(&header);
        mac_input.extend_from_slice(&self.atc);
        mac_input.extend_from_slice(&self.arqc);
        mac_input.extend_from_slice(data);
        let mac = retail_mac(&sk_smi, &mac_input);
        let mut apdu = Zeroizing::new(Vec::with_capacity(13 + data.len()));
        apdu.extend_from_slice(&header);
        apdu.extend_from_slice(data);
        apdu.extend_from_slice(&mac);
        ScriptCommand(apdu)
    }

    /// PIN CHANGE (P2 `02`, without the current PIN) setting `new_pin`.
    pub fn change_pin(&self, new_pin: &Pin) -> ScriptCommand {
        let block = match self.cvn.pin_block_format() {
            PinBlockFormat::Vis => vis_pin_block(
                &icc_master_key(self.cvn, &self.keys.ac, self.pan, self.psn),
                new_pin,
            ),
            PinBlockFormat::Iso9564Format2 => iso9564_format2(new_pin),
        };
        let sk_smc = self.session_key(&self.keys.smc);
        let data = encipher(&sk_smc, block.expose(), self.cvn.encipherment());
        // 16 or 8 bytes of data and an 8-byte MAC: Lc fits a byte.
        let lc = (data.len() + 8) as u8;
        self.command([0x84, 0x24, 0x00, 0x02, lc], &data)
    }

    /// PIN UNBLOCK: `84 24 00 00 08` and the MAC.
    pub fn unblock_pin(&self) -> ScriptCommand {
        self.command([0x84, 0x24, 0x00, 0x00, 0x08], &[])
    }
}

/// The issuer script template: `72 L 9F18 04 <script_id> 86 L <command>`.
pub fn issuer_script(script_id: [u8; 4], command: &ScriptCommand) -> IssuerScript {
    let cmd = command.as_bytes();
    let mut inner = Zeroizing::new(Vec::with_capacity(16 + cmd.len()));
    push_header(&mut inner, ISSUER_SCRIPT_ID, 4);
    inner.extend_from_slice(&script_id);
    push_header(&mut inner, ISSUER_SCRIPT_COMMAND, cmd.len());
    inner.extend_from_slice(cmd);
    let mut out = Zeroizing::new(Vec::with_capacity(8 + inner.len()));
    push_header(&mut out, ISSUER_SCRIPT_TEMPLATE_2, inner.len());
    out.extend_from_slice(&inner);
    IssuerScript(out)
}
