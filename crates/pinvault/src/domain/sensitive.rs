//! A secret in a request, a response or a setting: a PIN, a PAN, a control
//! token, a signing secret. Zeroed when dropped; its `Debug` says only that
//! it is redacted, and it has no `Display`, so no `{:?}` or `{}` can print it.
//! (`Zeroizing<String>`, by contrast, prints its value in `Debug`.)

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Sensitive<T: Zeroize>(Zeroizing<T>);

impl<T: Zeroize> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Sensitive(Zeroizing::new(value))
    }

    /// The value, to use it (never to print it).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value, still zeroed on drop.
    pub fn into_inner(self) -> Zeroizing<T> {
        self.0
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Sensitive::new)
    }
}

impl<T: Zeroize + Serialize> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Sensitive;

    #[test]
    fn never_printed_and_round_trips_through_json() {
        let s: Sensitive<String> = serde_json::from_str("\"4111111111111111\"").unwrap_or_default();
        assert_eq!(s.expose(), "4111111111111111");
        assert_eq!(format!("{s:?}"), "Sensitive(<redacted>)");
        assert_eq!(
            format!("{:#?}", Some(&s)),
            "Some(\n    Sensitive(<redacted>),\n)"
        );
        assert_eq!(
            serde_json::to_string(&s).unwrap_or_default(),
            "\"4111111111111111\""
        );
    }
}
