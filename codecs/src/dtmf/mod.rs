//! DTMF: digits, a Q.24 detector, a generator, and RFC 4733 telephone-event payloads.

mod detector;
mod generator;
mod goertzel;
mod rfc4733;

pub use detector::{DtmfDetector, DtmfDetectorConfig, DtmfEvent};
pub use generator::DtmfGenerator;
pub use goertzel::{block_energy, energies, Goertzel};
pub use rfc4733::{TelephoneEvent, TELEPHONE_EVENT_LEN};

use crate::CodecError;

/// Low-group (row) frequencies in Hz.
pub const ROW_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// High-group (column) frequencies in Hz.
pub const COL_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// One of the 16 DTMF digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfDigit(char);

impl DtmfDigit {
    pub const ALL: [DtmfDigit; 16] = [
        DtmfDigit('1'),
        DtmfDigit('2'),
        DtmfDigit('3'),
        DtmfDigit('A'),
        DtmfDigit('4'),
        DtmfDigit('5'),
        DtmfDigit('6'),
        DtmfDigit('B'),
        DtmfDigit('7'),
        DtmfDigit('8'),
        DtmfDigit('9'),
        DtmfDigit('C'),
        DtmfDigit('*'),
        DtmfDigit('0'),
        DtmfDigit('#'),
        DtmfDigit('D'),
    ];

    pub fn from_char(c: char) -> Result<Self, CodecError> {
        let c = c.to_ascii_uppercase();
        if KEYPAD.iter().flatten().any(|&k| k == c) {
            Ok(Self(c))
        } else {
            Err(CodecError::InvalidDigit(c))
        }
    }

    pub fn as_char(self) -> char {
        self.0
    }

    fn from_row_col(row: usize, col: usize) -> Self {
        Self(KEYPAD[row][col])
    }

    /// (row, column) indices into [`ROW_HZ`] / [`COL_HZ`].
    pub fn row_col(self) -> (usize, usize) {
        for (r, row) in KEYPAD.iter().enumerate() {
            for (c, &k) in row.iter().enumerate() {
                if k == self.0 {
                    return (r, c);
                }
            }
        }
        unreachable!("a DtmfDigit is always on the keypad")
    }

    /// RFC 4733 event code: 0-9, `*` = 10, `#` = 11, A-D = 12-15.
    pub fn event_code(self) -> u8 {
        match self.0 {
            '0'..='9' => self.0 as u8 - b'0',
            '*' => 10,
            '#' => 11,
            c => c as u8 - b'A' + 12,
        }
    }

    pub fn from_event_code(code: u8) -> Result<Self, CodecError> {
        let c = match code {
            0..=9 => (b'0' + code) as char,
            10 => '*',
            11 => '#',
            12..=15 => (b'A' + code - 12) as char,
            other => return Err(CodecError::UnknownTelephoneEvent(other)),
        };
        Ok(Self(c))
    }
}

impl std::fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_codes_round_trip_for_all_16_digits() {
        for d in DtmfDigit::ALL {
            assert_eq!(DtmfDigit::from_event_code(d.event_code()).unwrap(), d);
        }
        assert_eq!(DtmfDigit::from_char('*').unwrap().event_code(), 10);
        assert_eq!(DtmfDigit::from_char('d').unwrap().event_code(), 15);
        assert!(DtmfDigit::from_char('x').is_err());
        assert!(DtmfDigit::from_event_code(16).is_err());
    }
}
