//! A call's id (`call_control_id` in Telnyx's API): one type from the HTTP
//! path through call control and its registries to the engine's legs, so a
//! connection id, a leg id or a SIP Call-ID cannot be passed where a call is
//! meant. It reads as a `&str` (`Deref`, `Borrow<str>`), so maps keyed by it
//! are looked up with a `&str` and it prints and binds as text.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// A call's id: `v3:` and 32 hex digits for the calls Bond makes; any text
/// when it comes from outside (a path, a body), where an unknown id is
/// simply not found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, example = "v3:8f0a3c2e1b7d4a6f9e5c0b1a2d3e4f56")]
pub struct CallId(String);

impl CallId {
    /// A fresh id for a new call.
    pub fn generate() -> Self {
        Self(format!("v3:{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for CallId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for CallId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CallId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CallId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for CallId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

impl From<CallId> for String {
    fn from(id: CallId) -> Self {
        id.0
    }
}

impl PartialEq<str> for CallId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for CallId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for CallId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<CallId> for String {
    fn eq(&self, other: &CallId) -> bool {
        *self == other.0
    }
}

impl PartialEq<CallId> for &str {
    fn eq(&self, other: &CallId) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_id_is_v3_and_32_hex_digits_and_new_each_time() {
        let (a, b) = (CallId::generate(), CallId::generate());
        assert_ne!(a, b);
        let hex = a.strip_prefix("v3:").expect("v3: prefix");
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn it_is_a_plain_string_in_json() {
        let id = CallId::from("v3:abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""v3:abc""#);
        assert_eq!(serde_json::from_str::<CallId>(r#""v3:abc""#).unwrap(), id);
    }
}
