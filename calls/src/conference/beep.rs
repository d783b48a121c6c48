//! Telnyx's `beep_enabled`: a short tone every participant hears when someone
//! joins (two notes rising) or leaves (falling). The conference's setting, a
//! participant's own from its `join`, or a `leave`'s, in that order of weight.
//! A beep is played on the conference's overlay track, so it neither waits
//! behind an announcement nor cuts it off, and sends no playback events.

use std::f64::consts::PI;
use std::sync::Arc;

use bond_media_engine::leg::Clip;
use bond_media_engine::{LegId, CONFERENCE_CLIP_RATE};

use crate::error::CallError;
use crate::service::CallService;

/// When beeps sound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Beeps {
    #[default]
    Never,
    Always,
    OnEnter,
    OnExit,
}

impl Beeps {
    /// Telnyx's `always`, `never`, `on_enter`, `on_exit`; a wrong one is 10002 at `pointer`.
    pub fn parse(value: &str, pointer: &str) -> Result<Self, CallError> {
        Ok(match value {
            "always" => Self::Always,
            "never" => Self::Never,
            "on_enter" => Self::OnEnter,
            "on_exit" => Self::OnExit,
            _ => {
                let detail = "beep_enabled must be always, never, on_enter or on_exit";
                return Err(CallError::invalid("10002", detail, pointer));
            }
        })
    }

    pub fn on_enter(self) -> bool {
        matches!(self, Self::Always | Self::OnEnter)
    }

    pub fn on_exit(self) -> bool {
        matches!(self, Self::Always | Self::OnExit)
    }
}

/// The notes of the joining beep (Hz); leaving plays them the other way round.
const NOTES: [f64; 2] = [660.0, 880.0];
const NOTE_MS: u32 = 90;
/// About -16 dBFS: clear over voices without startling.
const LEVEL: f64 = 0.16;

/// One beep at the conference's clip rate: rising when `entering`.
fn beep_samples(entering: bool) -> Vec<i16> {
    let rate = f64::from(CONFERENCE_CLIP_RATE.hz());
    let len = (CONFERENCE_CLIP_RATE.hz() * NOTE_MS / 1000) as usize;
    let mut notes = NOTES;
    if !entering {
        notes.reverse();
    }
    notes
        .iter()
        .flat_map(|hz| {
            (0..len).map(move |i| {
                // A raised-cosine envelope: no click at either end of a note.
                let envelope = 0.5 - 0.5 * (2.0 * PI * i as f64 / len as f64).cos();
                ((2.0 * PI * hz * i as f64 / rate).sin() * envelope * LEVEL * f64::from(i16::MAX)) as i16
            })
        })
        .collect()
}

impl CallService {
    /// Beep to everyone in conference `media` (the engine's), if `sounds`.
    pub(super) async fn beep(&self, media: LegId, entering: bool, sounds: bool) {
        if !sounds {
            return;
        }
        let clip = Clip {
            id: self.next_id(),
            rate: CONFERENCE_CLIP_RATE,
            samples: Arc::from(beep_samples(entering)),
            plays: Some(1),
            duck: false,
        };
        if let Err(e) = self.engine.play_to_conference(media, clip, true).await {
            tracing::debug!(error = %e, "a conference beep was not played");
        }
    }

    /// The leaving beep in conference `id`, while it goes on, if `beeps` says so.
    pub(super) async fn beep_exit(&self, id: &str, beeps: Beeps) {
        let media = self.conferences().get_any(id).filter(|c| c.ended.is_none()).map(|c| c.media);
        if let Some(media) = media {
            self.beep(media, false, beeps.on_exit()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnyx_names_parse_and_say_when_to_beep() {
        let beeps = |v| Beeps::parse(v, "/beep_enabled").unwrap();
        assert!(beeps("always").on_enter() && beeps("always").on_exit());
        assert!(beeps("on_enter").on_enter() && !beeps("on_enter").on_exit());
        assert!(!beeps("on_exit").on_enter() && beeps("on_exit").on_exit());
        assert!(!beeps("never").on_enter() && !beeps("never").on_exit());
        assert!(Beeps::parse("sometimes", "/beep_enabled").is_err());
    }

    #[test]
    fn a_beep_is_two_short_notes_rising_in_and_falling_out() {
        let (enter, exit) = (beep_samples(true), beep_samples(false));
        let rate = CONFERENCE_CLIP_RATE.hz() as usize;
        assert_eq!(enter.len(), 2 * rate * NOTE_MS as usize / 1000);
        let half = enter.len() / 2;
        let zero_crossings = |s: &[i16]| s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(zero_crossings(&enter[..half]) < zero_crossings(&enter[half..]), "rising");
        assert!(zero_crossings(&exit[..half]) > zero_crossings(&exit[half..]), "falling");
        assert!(enter[0].abs() < 50 && enter[enter.len() - 1].abs() < 50, "no click at the ends");
    }
}
