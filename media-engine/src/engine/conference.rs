//! Conferences: many parties mixed in one engine, each hearing everyone but itself.
//!
//! A conference takes its id from its engine's leg ids, so commands and relays
//! reach its engine as they reach a leg's. A party joins through a bridge
//! whose peer is the conference: a leg of the same engine gets a local route
//! to it, a leg of another engine a remote one (that engine relays what the
//! party says, and the conference relays back what the party hears, as in a
//! bridge between engines, see `relay.rs`). What a party says reaches the
//! conference at the party's own rate and waits in its inbox, at most two
//! frames: each party ticks on its own clock.
//!
//! Every 20 ms the conference ticks on its own deadline. It takes one frame from
//! each inbox, adds up what everyone may hear at the conference's rate (the
//! highest of its parties'), and gives each party that sum less its own voice,
//! plus the whispers meant for it, converted to the party's rate. One sum a
//! tick and one subtraction per party: the cost grows with the parties, not
//! their square. Nothing is allocated per frame for parties of this engine;
//! a party in another engine gets its frame boxed, as a bridge's relay does.
//!
//! Clips played to a conference (announcements) come at [`CLIP_RATE`]; each
//! tick's share is converted to the conference's rate and added to the sum,
//! so every party hears it; their start and end are the engine's playback
//! events, about the conference's id.
//!
//! Roles follow Telnyx's `supervisor_role`: a speaker (`barge`, `none`) is
//! heard by all; a monitor hears all and is heard by none; a whisperer (a
//! coach) is heard only by the parties it names. Mute and hold are the legs'
//! own controls (`controls.rs`), applied by the party's engine as in a bridge:
//! a held party is not heard and hears its hold source.

use std::time::{Duration, Instant};

use bond_codecs::resample::{FrameResampler, ResamplerProfile};
use bond_codecs::{AudioFrame, SampleRate};

use super::bridge::Route;
use super::{Engine, EngineOutput, Relay};
use crate::ids::LegId;
use crate::leg::player::Player;
use crate::leg::Clip;
use crate::EngineError;

/// How often a conference mixes.
const TICK: Duration = Duration::from_millis(20);

/// The rate of clips played to a conference, whatever its own rate.
pub const CLIP_RATE: SampleRate = SampleRate::Hz48000;

/// Frames a party's inbox holds; a party that got further ahead loses its oldest.
const INBOX: usize = 2;

/// Who hears a conference party (Telnyx `supervisor_role`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PartyRole {
    /// Heard by every other party (`barge`, `none`).
    #[default]
    Speaker,
    /// Hears everyone, heard by no one.
    Monitor,
    /// Hears everyone, heard only by these legs (a coach whispering to an agent).
    Whisper(Vec<LegId>),
}

impl PartyRole {
    fn heard_by_all(&self) -> bool {
        matches!(self, Self::Speaker)
    }
}

#[derive(Debug)]
pub(super) struct Conference {
    rate: SampleRate,
    next_tick: Instant,
    parties: Vec<Party>,
    /// What every party may hear this tick, and one listener's share of it.
    sum: Vec<i32>,
    mix: Vec<i32>,
    /// Indices of this tick's whisperers (kept to reuse its room).
    whisperers: Vec<usize>,
    /// Clips everyone hears: this tick's share at [`CLIP_RATE`], and at the conference's rate.
    player: Player,
    clip: AudioFrame,
    clip_here: AudioFrame,
    clip_converter: Option<FrameResampler>,
}

#[derive(Debug)]
struct Party {
    leg: LegId,
    /// The leg lives in another engine: what it hears leaves as a relay.
    remote: bool,
    rate: SampleRate,
    role: PartyRole,
    /// From the party's rate to the conference's, and back (`None`: they agree).
    inward: Option<FrameResampler>,
    outward: Option<FrameResampler>,
    inbox: [AudioFrame; INBOX],
    queued: usize,
    /// What the party said this tick and what it hears, at the conference's rate.
    said: AudioFrame,
    hears: AudioFrame,
    /// What it hears at its own rate.
    out: AudioFrame,
}

impl Party {
    fn new(leg: LegId, rate: SampleRate, remote: bool, role: PartyRole) -> Self {
        let frame = AudioFrame::silent(rate, 0);
        Self {
            leg,
            remote,
            rate,
            role,
            inward: None,
            outward: None,
            inbox: [frame.clone(), frame.clone()],
            queued: 0,
            said: frame.clone(),
            hears: frame.clone(),
            out: frame,
        }
    }

    /// Convert to and from the conference's `rate` from now on.
    fn retune(&mut self, rate: SampleRate) -> Result<(), EngineError> {
        let converter = |from, to| {
            (from != to).then(|| FrameResampler::new(from, to, ResamplerProfile::LowDelay)).transpose()
        };
        self.inward = converter(self.rate, rate)?;
        self.outward = converter(rate, self.rate)?;
        self.queued = 0;
        for frame in [&mut self.said, &mut self.hears] {
            frame.reset(rate, 0);
        }
        Ok(())
    }

    /// A frame the party said, into its inbox (the oldest goes when it is full).
    fn push(&mut self, frame: &AudioFrame, rate: SampleRate) {
        if frame.rate() != self.rate {
            return;
        }
        if self.queued == INBOX {
            self.inbox.swap(0, 1);
            self.queued -= 1;
        }
        convert(&mut self.inward, frame, &mut self.inbox[self.queued], rate);
        self.queued += 1;
    }

    /// This tick's frame from the inbox, or silence when none came.
    fn take_said(&mut self) {
        if self.queued == 0 {
            self.said.fill_silence();
            return;
        }
        std::mem::swap(&mut self.said, &mut self.inbox[0]);
        self.inbox.swap(0, 1);
        self.queued -= 1;
    }

    /// `mix` (at the conference's rate) clipped into what the party hears, in its rate.
    fn set_hears(&mut self, mix: &[i32]) {
        for (out, &m) in self.hears.samples_mut().iter_mut().zip(mix) {
            *out = m.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
        convert(&mut self.outward, &self.hears, &mut self.out, self.rate);
    }
}

impl Conference {
    fn new(now: Instant) -> Self {
        Self {
            rate: SampleRate::Hz8000,
            next_tick: now,
            parties: Vec::new(),
            sum: Vec::new(),
            mix: Vec::new(),
            whisperers: Vec::new(),
            player: Player::default(),
            clip: AudioFrame::silent(CLIP_RATE, 0),
            clip_here: AudioFrame::silent(CLIP_RATE, 0),
            clip_converter: None,
        }
    }

    /// A frame `leg`'s party said, into its inbox (a leg not in it is ignored).
    pub(super) fn hear(&mut self, leg: LegId, frame: &AudioFrame) {
        let rate = self.rate;
        if let Some(party) = self.party_mut(leg) {
            party.push(frame, rate);
        }
    }

    fn party_mut(&mut self, leg: LegId) -> Option<&mut Party> {
        self.parties.iter_mut().find(|p| p.leg == leg)
    }

    /// The highest rate of the parties (8 kHz for none).
    fn wanted_rate(&self) -> SampleRate {
        self.parties.iter().map(|p| p.rate).max_by_key(|r| r.hz()).unwrap_or(SampleRate::Hz8000)
    }

    /// Mix at the highest rate of the parties: when that changes, every
    /// party's converters follow (a party already in loses one tick).
    fn retune(&mut self) -> Result<(), EngineError> {
        let rate = self.wanted_rate();
        if rate == self.rate && !self.sum.is_empty() {
            return Ok(());
        }
        self.rate = rate;
        self.sum = vec![0; rate.frame_samples()];
        self.mix = vec![0; rate.frame_samples()];
        self.clip_converter = (rate != CLIP_RATE)
            .then(|| FrameResampler::new(CLIP_RATE, rate, ResamplerProfile::LowDelay))
            .transpose()?;
        self.parties.iter_mut().try_for_each(|p| p.retune(rate))
    }

    /// A new party, converting to and from the conference's rate.
    fn add(&mut self, mut party: Party) -> Result<(), EngineError> {
        if self.parties.iter().any(|p| p.leg == party.leg) {
            return Err(EngineError::AlreadyBridged(party.leg));
        }
        party.retune(self.rate)?;
        self.parties.push(party);
        let retuned = self.retune();
        if retuned.is_err() {
            self.parties.pop();
        }
        retuned
    }

    /// One tick: each party's frame in, each party's mix out (in `Party::out`).
    fn mix(&mut self) {
        self.sum.fill(0);
        self.whisperers.clear();
        for (i, party) in self.parties.iter_mut().enumerate() {
            party.take_said();
            match &party.role {
                PartyRole::Speaker => add(&mut self.sum, party.said.samples()),
                PartyRole::Whisper(_) => self.whisperers.push(i),
                PartyRole::Monitor => {}
            }
        }
        if !self.player.is_idle() {
            self.clip.fill_silence();
            self.player.fill(&mut self.clip);
            convert(&mut self.clip_converter, &self.clip, &mut self.clip_here, self.rate);
            add(&mut self.sum, self.clip_here.samples());
        }
        for i in 0..self.parties.len() {
            self.mix.copy_from_slice(&self.sum);
            let listener = &self.parties[i];
            if listener.role.heard_by_all() {
                subtract(&mut self.mix, listener.said.samples());
            }
            for &w in &self.whisperers {
                let whisperer = &self.parties[w];
                if w != i && matches!(&whisperer.role, PartyRole::Whisper(to) if to.contains(&listener.leg)) {
                    add(&mut self.mix, whisperer.said.samples());
                }
            }
            self.parties[i].set_hears(&self.mix);
        }
    }
}

/// `frame` into `out` (at `rate`) through `converter`, or copied when there is none.
fn convert(
    converter: &mut Option<FrameResampler>,
    frame: &AudioFrame,
    out: &mut AudioFrame,
    rate: SampleRate,
) {
    match converter {
        Some(c) => {
            if c.process(frame, out).is_err() {
                out.reset(rate, 0);
            }
        }
        None => out.clone_from(frame),
    }
}

fn add(into: &mut [i32], samples: &[i16]) {
    for (a, &s) in into.iter_mut().zip(samples) {
        *a += i32::from(s);
    }
}

fn subtract(into: &mut [i32], samples: &[i16]) {
    for (a, &s) in into.iter_mut().zip(samples) {
        *a -= i32::from(s);
    }
}

impl Engine {
    /// A new, empty conference; its id is addressed like a leg's (to join,
    /// leave, end it, and for the runtime to find its engine).
    pub fn create_conference(&mut self, now: Instant) -> LegId {
        let id = self.next_id();
        self.conferences.insert(id, Conference::new(now));
        self.arm(id);
        id
    }

    /// Put `leg`, a leg of this engine not in a bridge, into `conference` as `role`.
    pub fn join_conference(
        &mut self,
        conference: LegId,
        leg: LegId,
        role: PartyRole,
    ) -> Result<(), EngineError> {
        let rate = self.leg_mut(leg)?.rate();
        if self.routes.contains_key(&leg) {
            return Err(EngineError::AlreadyBridged(leg));
        }
        self.add_party(conference, Party::new(leg, rate, false, role))?;
        self.routes.insert(leg, Route::new(conference, rate, rate, true)?);
        self.set_bridged(leg, Some(rate))?;
        self.refresh_passthrough(leg);
        Ok(())
    }

    /// Put `leg`, a leg of another engine whose audio is at `rate`, into
    /// `conference`; that engine then joins its half with
    /// [`bridge_remote`](Self::bridge_remote)`(leg, conference, rate, true)`.
    pub fn join_conference_remote(
        &mut self,
        conference: LegId,
        leg: LegId,
        rate: SampleRate,
        role: PartyRole,
    ) -> Result<(), EngineError> {
        if self.legs.contains_key(&leg) {
            return Err(EngineError::Config("the leg is in this engine: join it here"));
        }
        self.add_party(conference, Party::new(leg, rate, true, role))
    }

    fn add_party(&mut self, conference: LegId, party: Party) -> Result<(), EngineError> {
        self.conferences.get_mut(&conference).ok_or(EngineError::UnknownConference(conference))?.add(party)
    }

    /// Change who hears `leg` in `conference`.
    pub fn set_party_role(
        &mut self,
        conference: LegId,
        leg: LegId,
        role: PartyRole,
    ) -> Result<(), EngineError> {
        let conf = self.conferences.get_mut(&conference).ok_or(EngineError::UnknownConference(conference))?;
        conf.party_mut(leg).ok_or(EngineError::NotBridged(leg))?.role = role;
        Ok(())
    }

    /// The legs in `conference`, in the order they joined.
    pub fn conference_parties(&self, conference: LegId) -> Option<Vec<LegId>> {
        self.conferences.get(&conference).map(|c| c.parties.iter().map(|p| p.leg).collect())
    }

    /// End `conference`: every party leaves it (hearing its own source again)
    /// and the legs are returned. A party of another engine is told with a
    /// [`Relay::Unbridge`].
    pub fn end_conference(&mut self, conference: LegId) -> Result<Vec<LegId>, EngineError> {
        let mut conf =
            self.conferences.remove(&conference).ok_or(EngineError::UnknownConference(conference))?;
        self.armed.remove(&conference);
        for overlay in [false, true] {
            conf.player.stop(overlay, true);
        }
        self.outputs.extend(conf.player.drain_engine_events(conference).map(EngineOutput::Event));
        for party in &conf.parties {
            if party.remote {
                self.outputs
                    .push_back(EngineOutput::Relay(Relay::Unbridge { from: conference, to: party.leg }));
            } else if self.routes.remove(&party.leg).is_some() {
                self.leave_bridge(party.leg);
            }
        }
        Ok(conf.parties.iter().map(|p| p.leg).collect())
    }

    /// Play `clip` (at [`CLIP_RATE`]) to everyone in `conference`, queued on its
    /// main track or mixed over it as an `overlay`; `PlaybackStarted` and
    /// `PlaybackEnded` follow, about the conference's id.
    pub fn play_to_conference(
        &mut self,
        conference: LegId,
        clip: Clip,
        overlay: bool,
    ) -> Result<(), EngineError> {
        let conf = self.conferences.get_mut(&conference).ok_or(EngineError::UnknownConference(conference))?;
        if clip.rate != CLIP_RATE {
            return Err(EngineError::Config("a conference's clips must be at 48 kHz"));
        }
        conf.player.play(clip, overlay);
        Ok(())
    }

    /// Stop what plays to `conference` (see [`Engine::stop_playback`]).
    pub fn stop_conference_playback(
        &mut self,
        conference: LegId,
        overlay: bool,
        all: bool,
    ) -> Result<(), EngineError> {
        let conf = self.conferences.get_mut(&conference).ok_or(EngineError::UnknownConference(conference))?;
        conf.player.stop(overlay, all);
        self.conference_events(conference);
        Ok(())
    }

    /// The conference's playback events, out.
    fn conference_events(&mut self, conference: LegId) {
        if let Some(conf) = self.conferences.get_mut(&conference) {
            self.outputs.extend(conf.player.drain_engine_events(conference).map(EngineOutput::Event));
        }
    }

    /// `leg` left `conference` (its route is already gone).
    pub(super) fn drop_party(&mut self, conference: LegId, leg: LegId) {
        if let Some(conf) = self.conferences.get_mut(&conference) {
            conf.parties.retain(|p| p.leg != leg);
            let _ = conf.retune();
        }
    }

    /// What another engine relays to a conference of this one.
    pub(super) fn conference_relay(&mut self, relay: Relay) {
        match relay {
            Relay::Frame { from, to, frame } => {
                if let Some(conf) = self.conferences.get_mut(&to) {
                    conf.hear(from, &frame);
                }
            }
            Relay::Unbridge { from, to } => self.drop_party(to, from),
            // A conference decodes everything: no passthrough, and digits stay with their leg.
            Relay::Packet { .. } | Relay::Passthrough { .. } | Relay::Dtmf { .. } => {}
        }
    }

    /// When `conference` next mixes.
    pub(super) fn conference_deadline(&self, conference: LegId) -> Option<Instant> {
        self.conferences.get(&conference).map(|c| c.next_tick)
    }

    /// Mix `conference` if it is due, and hand each party what it hears.
    pub(super) fn tick_conference(&mut self, now: Instant, conference: LegId) {
        let Some(conf) = self.conferences.get_mut(&conference) else { return };
        if conf.next_tick > now {
            return;
        }
        // One tick a call: a conference that fell behind catches up without a burst.
        conf.next_tick = (conf.next_tick + TICK).max(now);
        conf.mix();
        self.outputs.extend(conf.player.drain_engine_events(conference).map(EngineOutput::Event));
        for party in &mut conf.parties {
            let hears = self.controls.get(&party.leg).is_none_or(|c| c.passes_outbound());
            if !hears {
                party.out.fill_silence();
            }
            if party.remote {
                let frame = party.out.clone();
                self.outputs.push_back(EngineOutput::Relay(Relay::Frame {
                    from: conference,
                    to: party.leg,
                    frame,
                }));
            } else if let Some(leg) = self.legs.get_mut(&party.leg) {
                self.frames_dropped += leg.handle_frame(&party.out).dropped();
            }
        }
    }
}
