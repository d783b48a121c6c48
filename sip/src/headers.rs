//! Headers an application adds to Bond's SIP requests (Telnyx's
//! `custom_headers` on a dial's INVITE and a `refer`'s REFER), checked once for both.

use rsipstack::sip::Header;

/// A header the application adds to an INVITE or a REFER (Telnyx's `custom_headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    pub name: String,
    pub value: String,
}

/// Headers the SIP stack writes itself: an application's would break the dialog.
const STACK_HEADERS: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "content-type",
    "content-length",
    "route",
    "record-route",
    "authorization",
    "proxy-authorization",
    "refer-to",
    "event",
    "expires",
    "v",
    "f",
    "t",
    "i",
    "m",
    "c",
    "l",
];

impl ExtraHeader {
    /// A header name (an RFC 3261 token the stack does not write itself) and a
    /// one-line value; the error says which rule it broke.
    pub fn checked(name: &str, value: &str) -> Result<Self, String> {
        let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(format!("'{name}' is not a SIP header name"));
        }
        if STACK_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!("{name} is written by Bond's SIP stack, not by the application"));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("the value of {name} must be one line"));
        }
        Ok(Self { name: name.to_owned(), value: value.to_owned() })
    }

    /// As rsipstack sends it.
    pub(crate) fn header(&self) -> Header {
        Header::Other(self.name.clone(), self.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_applications_header_is_a_token_and_one_line_and_not_the_stacks() {
        assert!(ExtraHeader::checked("X-Campaign", "spring 42").is_ok());
        assert!(ExtraHeader::checked("User-to-User", "56a390f3d2b7310023a2;encoding=hex").is_ok());
        for (name, value) in
            [("X A", "1"), ("", "1"), ("X-A", "1\r\nBYE sip:x"), ("Call-ID", "x"), ("via", "x"), ("i", "x")]
        {
            assert!(ExtraHeader::checked(name, value).is_err(), "{name}: {value}");
        }
    }
}
