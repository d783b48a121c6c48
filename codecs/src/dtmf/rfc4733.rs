//! RFC 4733 telephone-event payload (section 2.3):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |     event     |E|R| volume    |          duration             |
//! ```

use super::DtmfDigit;
use crate::CodecError;

/// Length of one telephone-event payload.
pub const TELEPHONE_EVENT_LEN: usize = 4;

/// A decoded telephone-event payload for a DTMF digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub digit: DtmfDigit,
    /// Set on the last packets of an event.
    pub end: bool,
    /// Power level of the tone as -dBm0, 0..=63.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn encode(&self) -> [u8; TELEPHONE_EVENT_LEN] {
        let duration = self.duration.to_be_bytes();
        [self.digit.event_code(), (u8::from(self.end) << 7) | (self.volume & 0x3F), duration[0], duration[1]]
    }

    /// Parse a payload; extra bytes (several events in one packet) are ignored.
    pub fn decode(payload: &[u8]) -> Result<Self, CodecError> {
        let &[event, flags, d0, d1, ..] = payload else {
            return Err(CodecError::Malformed("telephone-event payload shorter than 4 bytes"));
        };
        Ok(Self {
            digit: DtmfDigit::from_event_code(event)?,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_rfc_layout() {
        let ev = TelephoneEvent {
            digit: DtmfDigit::from_char('#').unwrap(),
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(ev.encode(), [11, 0x80 | 10, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::decode(&ev.encode()).unwrap(), ev);
    }

    #[test]
    fn reserved_bit_is_ignored_and_short_or_unknown_payloads_are_errors() {
        let ev = TelephoneEvent::decode(&[5, 0x40 | 7, 0, 160]).unwrap();
        assert!(!ev.end);
        assert_eq!(ev.volume, 7);
        assert!(TelephoneEvent::decode(&[1, 2, 3]).is_err());
        assert!(TelephoneEvent::decode(&[200, 0, 0, 0]).is_err());
    }
}
