//! Typed identifiers. The engine knows legs, not calls: the control plane's
//! `CallId` (bond-store) is mapped to its legs by `bond-calls`' registry.

use std::fmt;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "-{}"), self.0)
            }
        }
    };
}

typed_id!(
    /// One media endpoint inside the engine.
    LegId,
    "leg"
);

/// RTP synchronisation source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ssrc(pub u32);

/// RTP payload type, 0..=127.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadType(u8);

impl PayloadType {
    pub fn new(pt: u8) -> Option<Self> {
        (pt < 128).then_some(Self(pt))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_with_their_kind() {
        assert_eq!(LegId(7).to_string(), "leg-7");
    }

    #[test]
    fn payload_type_is_seven_bits() {
        assert_eq!(PayloadType::new(127).map(PayloadType::get), Some(127));
        assert!(PayloadType::new(128).is_none());
    }
}
