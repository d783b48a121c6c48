//! Bridges and clips through the runtime. Two legs of one shard are joined by
//! their engine; legs of two shards each get one direction, relayed between
//! the engines. Either way an Opus leg bridged to a narrower peer codes at the
//! peer's rate (see `Leg::code_opus_at`), so a clip or hold music made for the
//! rate a leg had may reach it at another: [`EngineHandle::play`] and
//! [`EngineHandle::hold`] make it again.

use std::sync::Arc;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use tokio::sync::oneshot;

use super::handle::{Command, EngineHandle, RuntimeError};
use crate::engine::DtmfPassing;
use crate::ids::LegId;
use crate::leg::{Clip, MediaSource};

/// How often a clip or hold music is made again for a leg whose rate moved.
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
    pub async fn play(&self, leg: LegId, clip: Clip, overlay: bool) -> Result<(), RuntimeError> {
        let remake = |clip: &Clip, rate| {
            let samples = remade(&clip.samples, clip.rate, rate)?;
            Ok(Clip { rate, samples, ..clip.clone() })
        };
        self.at_leg_rate(leg, clip, |clip, reply| Command::Play { leg, clip, overlay, reply }, remake).await
    }

    /// Put a leg on hold with `source` for its party (silence or music), or
    /// take it off with `None`. Music made for another rate than the leg has
    /// by the time it arrives is resampled and sent again, as a clip is.
    pub async fn hold(&self, leg: LegId, source: Option<MediaSource>) -> Result<(), RuntimeError> {
        let remake = |source: &Option<MediaSource>, rate| match source {
            Some(MediaSource::Play { samples, rate: made_for, repeat }) => {
                let samples = remade(samples, *made_for, rate)?;
                Ok(Some(MediaSource::Play { samples, rate, repeat: *repeat }))
            }
            _ => Err(RuntimeError::ClipRate(rate)),
        };
        self.at_leg_rate(leg, source, |source, reply| Command::Hold { leg, source, reply }, remake).await
    }

    /// Send `audio` to `leg` with `command`; while the engine answers that the
    /// leg's rate is another, `remake` it at that rate and send it again.
    async fn at_leg_rate<T: Clone>(
        &self,
        leg: LegId,
        mut audio: T,
        command: impl Fn(T, Reply) -> Command,
        remake: impl Fn(&T, SampleRate) -> Result<T, RuntimeError>,
    ) -> Result<(), RuntimeError> {
        for _ in 0..CLIP_TRIES {
            let sent = audio.clone();
            match self.request(leg, |reply| command(sent, reply)).await? {
                Err(RuntimeError::ClipRate(rate)) => audio = remake(&audio, rate)?,
                done => return done,
            }
        }
        Err(RuntimeError::Engine(format!("leg {leg} kept changing its rate under its audio")))
    }
}

type Reply = oneshot::Sender<Result<(), RuntimeError>>;

/// `samples` made at `from`, resampled to `to`.
fn remade(samples: &[i16], from: SampleRate, to: SampleRate) -> Result<Arc<[i16]>, RuntimeError> {
    let samples = resample_clip(samples, from.hz(), to).map_err(|e| RuntimeError::Engine(e.to_string()))?;
    Ok(samples.into())
}
