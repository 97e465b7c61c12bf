//! Finding a card at authorization time (API.md "Finding a card at
//! authorization time"): the cards of a program that share a PAN, narrowed by
//! what the host also read (the PAN sequence number, DE 23; the expiry, DE 14).

/// What narrows the cards that share a PAN.
#[derive(Debug, Clone, Copy, Default)]
pub struct Narrowing<'a> {
    pub pan_sequence_number: Option<&'a str>,
    pub expiry: Option<&'a str>,
}

/// What a candidate card says of itself (`None`: not known for this card).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub pan_sequence_number: Option<&'a str>,
    pub expiry: Option<&'a str>,
}

/// Why no one card was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    NotFound,
    /// Several cards are left: `card_ambiguous`.
    Ambiguous,
}

/// Reads one field of a candidate.
type Field<'a> = fn(&Candidate<'a>) -> Option<&'a str>;

/// The one candidate the host means, by index. A card whose known value of a
/// given field differs is out; then, field by field, where some of the cards
/// left know the value (equal, then) they win over cards that do not know it;
/// where none knows it, the field narrows nothing.
pub fn pick<'a>(candidates: &[Candidate<'a>], by: Narrowing<'_>) -> Result<usize, LookupError> {
    let fields: [(Option<&str>, Field<'a>); 2] = [
        (by.pan_sequence_number, |c| c.pan_sequence_number),
        (by.expiry, |c| c.expiry),
    ];
    // First every card that contradicts a given field is out; then, field by
    // field, cards that know the value win over those that do not.
    let agrees = |c: &Candidate<'a>| {
        fields
            .iter()
            .all(|(wanted, of)| wanted.is_none_or(|w| of(c).is_none_or(|v| v == w)))
    };
    let mut left: Vec<usize> = (0..candidates.len())
        .filter(|&i| agrees(&candidates[i]))
        .collect();
    for (wanted, of) in fields {
        if wanted.is_some() && left.iter().any(|&i| of(&candidates[i]).is_some()) {
            left.retain(|&i| of(&candidates[i]).is_some());
        }
    }
    match left.as_slice() {
        [] => Err(LookupError::NotFound),
        [one] => Ok(*one),
        _ => Err(LookupError::Ambiguous),
    }
}

pub use super::chip::valid_pan_sequence_number;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c<'a>(psn: Option<&'a str>, expiry: Option<&'a str>) -> Candidate<'a> {
        Candidate {
            pan_sequence_number: psn,
            expiry,
        }
    }

    fn by<'a>(psn: Option<&'a str>, expiry: Option<&'a str>) -> Narrowing<'a> {
        Narrowing {
            pan_sequence_number: psn,
            expiry,
        }
    }

    #[test]
    fn the_fields_narrow_reissues() {
        let cards = [c(None, Some("2027-01")), c(None, Some("2029-12"))];
        assert_eq!(pick(&cards, by(None, None)), Err(LookupError::Ambiguous));
        assert_eq!(pick(&cards, by(None, Some("2029-12"))), Ok(1));
        assert_eq!(
            pick(&cards, by(None, Some("2031-05"))),
            Err(LookupError::NotFound)
        );
        assert_eq!(pick(&[], Narrowing::default()), Err(LookupError::NotFound));
        assert_eq!(pick(&cards[..1], Narrowing::default()), Ok(0));
    }

    #[test]
    fn a_known_equal_value_wins_over_an_unknown_one() {
        let cards = [c(None, None), c(None, Some("2029-12")), c(Some("01"), None)];
        assert_eq!(pick(&cards, by(None, Some("2029-12"))), Ok(1));
        assert_eq!(pick(&cards, by(Some("01"), None)), Ok(2));
        // Nobody knows the expiry: it narrows nothing.
        let cards = [c(Some("00"), None), c(Some("01"), None)];
        assert_eq!(pick(&cards, by(Some("01"), Some("2029-12"))), Ok(1));
    }

    proptest! {
        /// Whatever the cards, the card picked never contradicts a given field,
        /// and a card equal on every given field is never lost to `NotFound`.
        #[test]
        fn a_pick_never_contradicts_the_host(
            cards in proptest::collection::vec((proptest::option::of(0u8..3), proptest::option::of(0u8..3)), 0..6),
            psn in proptest::option::of(0u8..3),
            expiry in proptest::option::of(0u8..3),
        ) {
            let text = |n: u8| format!("0{n}");
            let owned: Vec<(Option<String>, Option<String>)> =
                cards.iter().map(|(p, e)| (p.map(text), e.map(text))).collect();
            let cands: Vec<Candidate<'_>> =
                owned.iter().map(|(p, e)| c(p.as_deref(), e.as_deref())).collect();
            let (psn, expiry) = (psn.map(text), expiry.map(text));
            let by = by(psn.as_deref(), expiry.as_deref());
            let agrees = |x: &Candidate<'_>| {
                by.pan_sequence_number.is_none_or(|w| x.pan_sequence_number.is_none_or(|v| v == w))
                    && by.expiry.is_none_or(|w| x.expiry.is_none_or(|v| v == w))
            };
            match pick(&cands, by) {
                Ok(i) => prop_assert!(agrees(&cands[i])),
                Err(LookupError::NotFound) => prop_assert!(!cands.iter().any(agrees)),
                Err(LookupError::Ambiguous) => {
                    prop_assert!(cands.iter().filter(|x| agrees(x)).count() >= 2)
                }
            }
        }
    }
}
