//! Clips played to a leg's party (`playback_start`, `speak`): a main track whose
//! clips replace what the party would hear, one after another, and an overlay
//! track mixed on top of whatever goes out. Clips arrive already at the leg's
//! rate; the player only counts samples, so it never allocates per frame. A
//! ducking overlay turns what is under it down, ramping over 20 ms each way.

use std::collections::VecDeque;
use std::sync::Arc;

use bond_codecs::{AudioFrame, SampleRate};

use super::LegOutput;
use crate::event::EngineEvent;
use crate::ids::LegId;

/// A clip to play: `samples` at the leg's rate, `plays` times (`None`: until stopped).
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    /// The caller's name for it, echoed in its events.
    pub id: u64,
    pub rate: SampleRate,
    pub samples: Arc<[i16]>,
    pub plays: Option<u32>,
    /// On the overlay track: what the party would hear is turned down 12 dB
    /// under the clip while it plays (a translation spoken over the original voice).
    pub duck: bool,
}

/// How a clip's playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlaybackEnd {
    /// Played to the end, every time asked.
    Completed,
    /// Stopped (or dropped from the queue) on request.
    Stopped,
}

/// What the player reports, for the leg to turn into engine events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlayerEvent {
    Started(u64),
    Ended(u64, PlaybackEnd),
}

impl PlayerEvent {
    pub fn on(self, leg: LegId) -> EngineEvent {
        match self {
            Self::Started(id) => EngineEvent::PlaybackStarted { leg, id },
            Self::Ended(id, end) => EngineEvent::PlaybackEnded { leg, id, end },
        }
    }
}

#[derive(Debug)]
struct Playing {
    clip: Clip,
    position: usize,
    plays_left: Option<u32>,
}

/// One track: a queue and the clip playing now.
#[derive(Debug, Default)]
struct Track {
    queue: VecDeque<Clip>,
    playing: Option<Playing>,
}

/// How far a ducking overlay turns the audio under it down (to 0.25: -12 dB),
/// and by how much per sample the level moves (160 samples from one to the other).
const DUCKED_BY: f32 = 0.75;
const DUCK_STEP: f32 = DUCKED_BY / 160.0;

impl Track {
    fn is_idle(&self) -> bool {
        self.playing.is_none() && self.queue.is_empty()
    }

    fn ducks(&self) -> bool {
        self.playing.as_ref().is_some_and(|p| p.clip.duck)
    }

    /// The next sample, starting and ending clips as it goes; `None` when idle.
    fn next_sample(&mut self, events: &mut VecDeque<PlayerEvent>) -> Option<i16> {
        loop {
            if self.playing.is_none() {
                let clip = self.queue.pop_front()?;
                events.push_back(PlayerEvent::Started(clip.id));
                self.playing = Some(Playing { plays_left: clip.plays, clip, position: 0 });
            }
            let playing = self.playing.as_mut()?;
            if let Some(&sample) = playing.clip.samples.get(playing.position) {
                playing.position += 1;
                return Some(sample);
            }
            // The end of one play: again, or the next clip.
            let again = match &mut playing.plays_left {
                None => !playing.clip.samples.is_empty(),
                Some(left) => {
                    *left = left.saturating_sub(1);
                    *left > 0 && !playing.clip.samples.is_empty()
                }
            };
            if again {
                playing.position = 0;
            } else {
                events.push_back(PlayerEvent::Ended(playing.clip.id, PlaybackEnd::Completed));
                self.playing = None;
            }
        }
    }

    fn stop(&mut self, all: bool, events: &mut VecDeque<PlayerEvent>) {
        if let Some(playing) = self.playing.take() {
            events.push_back(PlayerEvent::Ended(playing.clip.id, PlaybackEnd::Stopped));
        }
        if all {
            events.extend(self.queue.drain(..).map(|clip| PlayerEvent::Ended(clip.id, PlaybackEnd::Stopped)));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Player {
    main: Track,
    overlay: Track,
    events: VecDeque<PlayerEvent>,
    /// How far the audio under the overlay is turned down now (0: not at all).
    ducked: f32,
    /// Audio to add to the next frame (`mix_in`), summed if more arrives first.
    mix: Option<AudioFrame>,
    /// What was mixed into the latest frame, so a supervisor listening to it can
    /// take its own voice back out.
    mixed: Option<AudioFrame>,
    /// The frame `mixed` held before, reused for the next `mix` (no allocation per frame).
    spare: Option<AudioFrame>,
}

impl Player {
    pub fn play(&mut self, clip: Clip, overlay: bool) {
        self.track(overlay).queue.push_back(clip);
    }

    /// Add `frame` to the next frame filled (frames arriving before then are summed).
    pub fn mix_in(&mut self, frame: &AudioFrame) {
        match &mut self.mix {
            Some(mix) if mix.rate() == frame.rate() => add(mix.samples_mut(), frame.samples()),
            _ => {
                let mut room = self.spare.take().unwrap_or_else(|| frame.clone());
                room.clone_from(frame);
                self.mix = Some(room);
            }
        }
    }

    /// What was mixed into the latest frame filled, if anything.
    pub fn mixed(&self) -> Option<&AudioFrame> {
        self.mixed.as_ref()
    }

    /// Stop the clip playing on a track and, with `all`, drop its queue too.
    pub fn stop(&mut self, overlay: bool, all: bool) {
        let track = if overlay { &mut self.overlay } else { &mut self.main };
        track.stop(all, &mut self.events);
    }

    /// This tick's clips into `frame`: the main track replaces it (silence after
    /// a clip that ends mid-frame), the overlay is added on top.
    pub fn fill(&mut self, frame: &mut AudioFrame) {
        if !self.main.is_idle() {
            for sample in frame.samples_mut() {
                *sample = self.main.next_sample(&mut self.events).unwrap_or(0);
            }
        }
        if !self.overlay.is_idle() || self.ducked > 0.0 {
            for sample in frame.samples_mut() {
                let add = self.overlay.next_sample(&mut self.events).unwrap_or(0);
                let target = if self.overlay.ducks() { DUCKED_BY } else { 0.0 };
                self.ducked =
                    (self.ducked + (target - self.ducked).clamp(-DUCK_STEP, DUCK_STEP)).clamp(0.0, DUCKED_BY);
                let under = (f32::from(*sample) * (1.0 - self.ducked)) as i16;
                *sample = under.saturating_add(add);
            }
        }
        let mix = self.mix.take().filter(|m| m.rate() == frame.rate());
        if let Some(before) = std::mem::replace(&mut self.mixed, mix) {
            self.spare = Some(before);
        }
        if let Some(mix) = &self.mixed {
            add(frame.samples_mut(), mix.samples());
        }
    }

    pub fn is_idle(&self) -> bool {
        self.main.is_idle() && self.overlay.is_idle() && self.mix.is_none()
    }

    #[cfg(test)]
    fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }

    /// What happened, as engine events about `leg` (a conference's player has no leg outputs).
    pub fn drain_engine_events(&mut self, leg: LegId) -> impl Iterator<Item = EngineEvent> + '_ {
        self.events.drain(..).map(move |event| event.on(leg))
    }

    /// Move what happened to `leg`'s outputs as engine events.
    pub fn drain_events(&mut self, leg: LegId, outputs: &mut VecDeque<LegOutput>) {
        outputs.extend(self.events.drain(..).map(|event| LegOutput::Event(event.on(leg))));
    }

    fn track(&mut self, overlay: bool) -> &mut Track {
        if overlay {
            &mut self.overlay
        } else {
            &mut self.main
        }
    }
}

/// `from` added onto `into`, sample by sample, saturating.
pub(crate) fn add(into: &mut [i16], from: &[i16]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.saturating_add(*b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(id: u64, value: i16, len: usize, plays: Option<u32>) -> Clip {
        Clip { id, rate: SampleRate::Hz8000, samples: vec![value; len].into(), plays, duck: false }
    }

    fn frames(player: &mut Player, n: usize, input: i16) -> Vec<Vec<i16>> {
        (0..n)
            .map(|_| {
                let mut frame = AudioFrame::from_samples(SampleRate::Hz8000, 0, &[input; 160]).unwrap();
                player.fill(&mut frame);
                frame.samples().to_vec()
            })
            .collect()
    }

    fn events(player: &mut Player) -> Vec<PlayerEvent> {
        std::iter::from_fn(|| player.poll_event()).collect()
    }

    #[test]
    fn queued_clips_replace_the_audio_in_turn_then_it_comes_back() {
        let mut player = Player::default();
        player.play(clip(1, 100, 240, Some(1)), false);
        player.play(clip(2, 200, 160, Some(2)), false);
        let out = frames(&mut player, 5, 7);
        assert_eq!(out[0], vec![100; 160]);
        assert_eq!(out[1][..80], [100; 80], "the rest of clip 1");
        assert_eq!(out[1][80..], [200; 80], "clip 2 starts in the same frame");
        assert_eq!(out[2], vec![200; 160]);
        assert_eq!(out[3][..80], [200; 80]);
        assert_eq!(out[3][80..], [0; 80], "silence to the end of the frame the clips ran out in");
        assert_eq!(out[4], vec![7; 160], "the party's own audio again");
        use PlayerEvent::*;
        assert_eq!(
            events(&mut player),
            [Started(1), Ended(1, PlaybackEnd::Completed), Started(2), Ended(2, PlaybackEnd::Completed)]
        );
    }

    #[test]
    fn the_overlay_mixes_on_top_and_saturates() {
        let mut player = Player::default();
        player.play(clip(1, 30_000, 320, Some(1)), true);
        let out = frames(&mut player, 3, 5_000);
        assert_eq!(out[0], vec![i16::MAX; 160]);
        assert_eq!(out[2], vec![5_000; 160]);
    }

    #[test]
    fn a_ducking_overlay_turns_the_audio_under_it_down_12_db_and_back_up_after() {
        let mut player = Player::default();
        player.play(Clip { duck: true, ..clip(1, 1_000, 1_600, Some(1)) }, true);
        let out = frames(&mut player, 14, 4_000);
        assert!(
            out[0][0] > 4_900 && out[0][159] < 2_100,
            "ramps down over the first frame: {:?}",
            &out[0][..3]
        );
        assert!(out[5].iter().all(|&s| (1_990..=2_000).contains(&s)), "4,000 at a quarter plus 1,000");
        assert!(out[10][159] > 3_980, "back up within a frame of the clip's end");
        assert_eq!(out[13], vec![4_000; 160]);
    }

    #[test]
    fn mixed_in_frames_add_up_over_the_next_frame_only() {
        let mut player = Player::default();
        let frame = |v| AudioFrame::from_samples(SampleRate::Hz8000, 0, &[v; 160]).unwrap();
        player.mix_in(&frame(100));
        player.mix_in(&frame(20));
        assert!(!player.is_idle());
        let out = frames(&mut player, 2, 1_000);
        assert_eq!((out[0][0], out[1][0]), (1_120, 1_000));
        assert!(player.is_idle());
    }

    #[test]
    fn stopping_ends_the_current_clip_and_with_all_the_queue() {
        let mut player = Player::default();
        player.play(clip(1, 1, 160, None), false);
        player.play(clip(2, 2, 160, None), false);
        player.play(clip(3, 3, 160, None), false);
        let _ = frames(&mut player, 10, 0);
        player.stop(false, false);
        assert_eq!(frames(&mut player, 1, 0)[0], vec![2; 160], "the next clip plays after `current`");
        player.stop(false, true);
        assert_eq!(frames(&mut player, 1, 9)[0], vec![9; 160]);
        use PlayerEvent::*;
        assert_eq!(
            events(&mut player),
            [
                Started(1),
                Ended(1, PlaybackEnd::Stopped),
                Started(2),
                Ended(2, PlaybackEnd::Stopped),
                Ended(3, PlaybackEnd::Stopped)
            ]
        );
    }

    #[test]
    fn an_empty_clip_ends_at_once_even_when_looping_forever() {
        let mut player = Player::default();
        player.play(clip(1, 0, 0, None), false);
        assert_eq!(frames(&mut player, 1, 4)[0], vec![0; 160]);
        assert_eq!(
            events(&mut player),
            [PlayerEvent::Started(1), PlayerEvent::Ended(1, PlaybackEnd::Completed)]
        );
    }
}
