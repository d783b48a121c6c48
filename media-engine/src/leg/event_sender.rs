//! Digits sent as RFC 4733 telephone-events (section 2.5): a digit is a run of
//! packets, one per 20 ms tick, that all carry the RTP timestamp of the digit's
//! start; the first has the marker bit, the duration grows with each, and the
//! last is sent three times with the E bit. The leg's audio pauses while a
//! digit lasts and resumes after it, its timestamps having moved on.

use std::collections::VecDeque;

use bond_codecs::dtmf::{DtmfDigit, TelephoneEvent, TELEPHONE_EVENT_LEN};

use super::DtmfTiming;

/// -dBm0 of the tone the receiver should play (RFC 4733 2.3.4).
const VOLUME: u8 = 10;
/// How many times the final packet is sent (RFC 4733 2.5.1.4).
const END_PACKETS: u8 = 3;

/// One tick's telephone-event packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EventPacket {
    pub payload: [u8; TELEPHONE_EVENT_LEN],
    /// The RTP timestamp of the digit's start.
    pub timestamp: u32,
    pub marker: bool,
}

#[derive(Debug)]
struct Sending {
    digit: DtmfDigit,
    start: u32,
    /// Tone length and time sent so far, in RTP clock units.
    tone: u32,
    elapsed: u32,
    ends_sent: u8,
    gap_ticks: u32,
}

#[derive(Debug, Default)]
pub(crate) struct EventSender {
    queue: VecDeque<(DtmfDigit, DtmfTiming)>,
    current: Option<Sending>,
    gap_ticks: u32,
}

impl EventSender {
    pub fn queue(&mut self, digits: &[DtmfDigit], timing: DtmfTiming) {
        self.queue.extend(digits.iter().map(|&d| (d, timing)));
    }

    /// Nothing queued or being sent, and no gap after a digit to keep.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.current.is_none() && self.gap_ticks == 0
    }

    /// This tick's packet while a digit is being sent, else `None` (the tick
    /// carries audio). `now` is the RTP timestamp this tick's audio would have,
    /// `tick` its length and `clock` the rate, both in RTP clock units.
    pub fn next(&mut self, now: u32, tick: u32, clock: u32) -> Option<EventPacket> {
        if self.current.is_none() {
            if self.gap_ticks > 0 {
                self.gap_ticks -= 1;
                return None;
            }
            let (digit, timing) = self.queue.pop_front()?;
            let tone = u64::from(clock) * u64::from(timing.tone_ms) / 1000;
            self.current = Some(Sending {
                digit,
                start: now,
                tone: tone.clamp(u64::from(tick), u64::from(u16::MAX)) as u32,
                elapsed: 0,
                ends_sent: 0,
                gap_ticks: timing.gap_ms.div_ceil(20),
            });
        }
        let sending = self.current.as_mut()?;
        let marker = sending.elapsed == 0;
        sending.elapsed = (sending.elapsed + tick).min(sending.tone);
        let end = sending.elapsed == sending.tone;
        let event =
            TelephoneEvent { digit: sending.digit, end, volume: VOLUME, duration: sending.elapsed as u16 };
        let packet = EventPacket { payload: event.encode(), timestamp: sending.start, marker };
        if end {
            sending.ends_sent += 1;
            if sending.ends_sent == END_PACKETS {
                self.gap_ticks = sending.gap_ticks;
                self.current = None;
            }
        }
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digit_is_packets_sharing_its_start_timestamp_then_three_ends_then_the_gap() {
        let mut sender = EventSender::default();
        let digits = [DtmfDigit::from_char('5').unwrap(), DtmfDigit::from_char('#').unwrap()];
        sender.queue(&digits, DtmfTiming { tone_ms: 100, gap_ms: 40 });
        let mut now = 1000u32;
        let mut ticks = Vec::new();
        for _ in 0..20 {
            ticks.push(sender.next(now, 160, 8000));
            now = now.wrapping_add(160);
        }
        let first: Vec<_> = ticks[..7].iter().map(|p| p.expect("a packet each tick")).collect();
        let decoded: Vec<_> = first.iter().map(|p| TelephoneEvent::decode(&p.payload).unwrap()).collect();
        assert!(first.iter().all(|p| p.timestamp == 1000), "one timestamp for the whole digit");
        assert_eq!(
            first.iter().map(|p| p.marker).collect::<Vec<_>>(),
            [true, false, false, false, false, false, false]
        );
        assert_eq!(
            decoded.iter().map(|e| e.duration).collect::<Vec<_>>(),
            [160, 320, 480, 640, 800, 800, 800]
        );
        assert_eq!(
            decoded.iter().map(|e| e.end).collect::<Vec<_>>(),
            [false, false, false, false, true, true, true]
        );
        assert!(decoded.iter().all(|e| e.digit.as_char() == '5' && e.volume == VOLUME));
        assert_eq!(&ticks[7..9], &[None, None], "40 ms of audio between digits");
        let second = ticks[9].unwrap();
        assert_eq!((second.timestamp, second.marker), (1000 + 9 * 160, true));
        assert_eq!(TelephoneEvent::decode(&second.payload).unwrap().digit.as_char(), '#');
        assert_eq!(ticks[16..], [None, None, None, None], "idle once the queue is empty");
    }

    #[test]
    fn durations_count_in_the_codecs_clock_and_stay_within_16_bits() {
        let mut sender = EventSender::default();
        sender.queue(&[DtmfDigit::from_char('1').unwrap()], DtmfTiming { tone_ms: 2000, gap_ms: 0 });
        let mut last = None;
        while let Some(p) = sender.next(0, 960, 48_000) {
            last = Some(TelephoneEvent::decode(&p.payload).unwrap());
        }
        assert_eq!(last.map(|e| (e.end, e.duration)), Some((true, u16::MAX)));
    }
}
