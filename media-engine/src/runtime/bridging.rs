//! Bridges and clips through the runtime. Two legs of one shard are joined by
//! their engine; legs of two shards each get one direction, relayed between
//! the engines. Either way an Opus leg bridged to a narrower peer codes at the
//! peer's rate (see `Leg::code_opus_at`), so a clip or hold music made for the
//! rate a leg had may reach it at another: [`EngineHandle::play`] and
//! [`EngineHandle::hold`] make it again.

use bond_codecs::resample::resample_clip;

use super::handle::{Command, EngineHandle, RuntimeError};
use crate::engine::DtmfPassing;
use crate::ids::LegId;
use crate::leg::{Clip, MediaSource};

/// How often [`EngineHandle::play`] makes a clip again for a leg whose rate moved.
const CLIP_TRIES: usize = 3;

impl EngineHandle {
    /// Join two legs so each hears the other; `dtmf` says which way digits pass.
    /// Legs on two shards each get one direction, relayed between the engines.
    pub async fn bridge(&self, a: LegId, b: LegId, dtmf: DtmfPassing) -> Result<(), RuntimeError> {
        if self.shard_index(a) == self.shard_index(b) {
            return self.request(a, |reply| Command::Bridge { a, b, dtmf, reply }).await?;
        }
        let unknown = |leg| RuntimeError::Engine(crate::EngineError::UnknownLeg(leg).to_string());
        let rate_b = self.leg_rate(b).await?.ok_or_else(|| unknown(b))?;
        let rate_a = self.request(a, |reply| Command::FitRate { leg: a, rate: rate_b, reply }).await??;
        let rate_b = self.request(b, |reply| Command::FitRate { leg: b, rate: rate_a, reply }).await??;
        let (a_to_b, b_to_a) = dtmf.directions();
        self.request(a, |reply| Command::BridgeRemote {
            leg: a,
            peer: b,
            peer_rate: rate_b,
            carry_dtmf: a_to_b,
            reply,
        })
        .await??;
        let second = self
            .request(b, |reply| Command::BridgeRemote {
                leg: b,
                peer: a,
                peer_rate: rate_a,
                carry_dtmf: b_to_a,
                reply,
            })
            .await
            .and_then(|r| r);
        if second.is_err() {
            // `b` could not join (already bridged, gone): take `a`'s half down again.
            let _ = self.unbridge(a).await;
        }
        second
    }

    /// Take a leg (and its peer) out of its bridge; returns the peer.
    pub async fn unbridge(&self, leg: LegId) -> Result<LegId, RuntimeError> {
        self.request(leg, |reply| Command::Unbridge { leg, reply }).await?
    }

    /// Play a clip to a leg's party (see [`Engine::play`](crate::Engine::play)).
    /// A clip made at another rate than the leg has by the time it arrives (an
    /// Opus leg bridged or unbridged meanwhile) is resampled here, off the media
    /// path, and sent again.
    pub async fn play(&self, leg: LegId, mut clip: Clip, overlay: bool) -> Result<(), RuntimeError> {
        for _ in 0..CLIP_TRIES {
            let sent = clip.clone();
            match self.request(leg, |reply| Command::Play { leg, clip: sent, overlay, reply }).await? {
                Err(RuntimeError::ClipRate(rate)) => {
                    let samples = resample_clip(&clip.samples, clip.rate.hz(), rate)
                        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
                    clip = Clip { rate, samples: samples.into(), ..clip };
                }
                done => return done,
            }
        }
        Err(RuntimeError::Engine(format!("leg {leg} kept changing its rate under a clip")))
    }

    /// Put a leg on hold with `source` for its party (silence or music), or
    /// take it off with `None`. Music made for another rate than the leg has
    /// by the time it arrives is resampled and sent again, as a clip is.
    pub async fn hold(&self, leg: LegId, mut source: Option<MediaSource>) -> Result<(), RuntimeError> {
        for _ in 0..CLIP_TRIES {
            let sent = source.clone();
            match self.request(leg, |reply| Command::Hold { leg, source: sent, reply }).await? {
                Err(RuntimeError::ClipRate(rate)) => {
                    let Some(MediaSource::Play { samples, rate: made_for, repeat }) = source else {
                        return Err(RuntimeError::ClipRate(rate));
                    };
                    let samples = resample_clip(&samples, made_for.hz(), rate)
                        .map_err(|e| RuntimeError::Engine(e.to_string()))?;
                    source = Some(MediaSource::Play { samples: samples.into(), rate, repeat });
                }
                done => return done,
            }
        }
        Err(RuntimeError::Engine(format!("leg {leg} kept changing its rate under its hold music")))
    }
}
