//! PIN blocks for the chip's PIN CHANGE command.
//!
//! - ISO 9564-1 format 2 (EMV Book 3 §6.5.12, the offline PIN block): `2N`, the
//!   PIN digits, `F` fill to 8 bytes. Bound to nothing.
//! - Visa's VIS PIN block: the same layout with control nibble `0`
//!   (`0N P… F…`, as ISO format 0) XORed with `00 00 00 00` followed by bytes 4–7
//!   of the ICC master key for application cryptograms (MK AC, odd parity),
//!   which binds the block to the card. (VIS also has a variant XORing in the
//!   current PIN, for PIN CHANGE with P2 `01`; pinvault changes the PIN without
//!   the current one, P2 `02`, so it is not made here.)

use core::fmt;

use zeroize::Zeroizing;

use crate::{Pin, TdesKey};

/// A clear 8-byte chip PIN block. `Debug` is redacted, zeroed on drop.
#[derive(Clone)]
pub struct ChipPinBlock(Zeroizing<[u8; 8]>);

impl ChipPinBlock {
    /// The block's bytes.
    pub fn expose(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Debug for ChipPinBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChipPinBlock(<redacted>)")
    }
}

/// `C N P… F…`: control nibble, length nibble, the digits, `F` to 16 nibbles.
fn layout(control: u8, pin: &Pin) -> ChipPinBlock {
    let mut block = Zeroizing::new([0xFFu8; 8]);
    // PIN_MAX_LEN is 12, so the length fits the nibble.
    block[0] = (control << 4) | (pin.len() as u8 & 0x0F);
    for (i, d) in pin.digits().enumerate() {
        let nibble = 2 + i;
        let byte = &mut block[nibble / 2];
        *byte = if nibble % 2 == 0 {
            (*byte & 0x0F) | (d << 4)
        } else {
            (*byte & 0xF0) | d
        };
    }
    ChipPinBlock(block)
}

/// ISO 9564-1 format 2.
pub fn iso9564_format2(pin: &Pin) -> ChipPinBlock {
    layout(2, pin)
}

/// Visa's VIS PIN block under the ICC AC master key.
pub fn vis_pin_block(icc_mk_ac: &TdesKey, pin: &Pin) -> ChipPinBlock {
    let mut block = layout(0, pin);
    for (b, k) in block.0[4..].iter_mut().zip(&icc_mk_ac.expose()[4..8]) {
        *b ^= k;
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pyemv_examples() {
        let pin = Pin::new("123456789012").unwrap();
        assert_eq!(
            iso9564_format2(&pin).expose(),
            &[0x2C, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0xFF]
        );
        let pin = Pin::new("9999").unwrap();
        assert_eq!(
            iso9564_format2(&pin).expose(),
            &[0x24, 0x99, 0x99, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        let mk = TdesKey::new([
            0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ]);
        let pin = Pin::new("1234").unwrap();
        assert_eq!(
            vis_pin_block(&mk, &pin).expose(),
            &[0x04, 0x12, 0x34, 0xFF, 0x76, 0x54, 0x32, 0x10]
        );
        assert_eq!(
            format!("{:?}", vis_pin_block(&mk, &pin)),
            "ChipPinBlock(<redacted>)"
        );
    }
}
