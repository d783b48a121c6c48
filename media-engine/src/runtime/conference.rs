//! Conferences through the runtime. A conference lives in one shard's engine
//! (the one of the leg it is created near); a party of another shard joins
//! in two steps, as a bridge across shards does: the conference's engine
//! takes it as a remote party, then the party's engine joins its half, and
//! the two relay frames to each other (see the engine's `conference.rs`).
//! A party leaves as it would leave a bridge: [`EngineHandle::unbridge`].

use bond_codecs::SampleRate;
use tokio::sync::oneshot;

use super::handle::{Command, EngineHandle, RuntimeError};
use crate::engine::{Engine, PartyRole};
use crate::ids::LegId;
use crate::leg::Clip;

/// A command to a conference's engine.
#[derive(Debug)]
pub(crate) enum ConferenceCommand {
    Create {
        reply: oneshot::Sender<LegId>,
    },
    /// `rate`: the leg is in another shard, with audio at that rate.
    Join {
        conference: LegId,
        leg: LegId,
        role: PartyRole,
        rate: Option<SampleRate>,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Role {
        conference: LegId,
        leg: LegId,
        role: PartyRole,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    /// Take a party of another shard out again (its half could not join).
    Drop {
        conference: LegId,
        leg: LegId,
        reply: oneshot::Sender<()>,
    },
    End {
        conference: LegId,
        reply: oneshot::Sender<Result<Vec<LegId>, RuntimeError>>,
    },
    Play {
        conference: LegId,
        clip: Clip,
        overlay: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
    Stop {
        conference: LegId,
        overlay: bool,
        reply: oneshot::Sender<Result<(), RuntimeError>>,
    },
}

impl ConferenceCommand {
    /// Carry the command out on `engine` (on its driver).
    pub(crate) fn run(self, engine: &mut Engine, now: std::time::Instant) {
        let error = |e: crate::EngineError| RuntimeError::Engine(e.to_string());
        match self {
            Self::Create { reply } => {
                let _ = reply.send(engine.create_conference(now));
            }
            Self::Join { conference, leg, role, rate, reply } => {
                let joined = match rate {
                    Some(rate) => engine.join_conference_remote(conference, leg, rate, role),
                    None => engine.join_conference(conference, leg, role),
                };
                let _ = reply.send(joined.map_err(error));
            }
            Self::Role { conference, leg, role, reply } => {
                let _ = reply.send(engine.set_party_role(conference, leg, role).map_err(error));
            }
            Self::Drop { conference, leg, reply } => {
                let _ = engine.handle_relay(now, crate::Relay::Unbridge { from: leg, to: conference });
                let _ = reply.send(());
            }
            Self::End { conference, reply } => {
                let _ = reply.send(engine.end_conference(conference).map_err(error));
            }
            Self::Play { conference, clip, overlay, reply } => {
                let _ = reply.send(engine.play_to_conference(conference, clip, overlay).map_err(error));
            }
            Self::Stop { conference, overlay, reply } => {
                let _ = reply.send(engine.stop_conference_playback(conference, overlay, true).map_err(error));
            }
        }
    }
}

impl EngineHandle {
    /// A new, empty conference, on the shard this handle creates legs on (see
    /// [`near`](Self::near): create it near its first party).
    pub async fn create_conference(&self) -> Result<LegId, RuntimeError> {
        self.create(|reply| Command::Conference(ConferenceCommand::Create { reply })).await
    }

    /// Put `leg` (in no bridge) into `conference` as `role`.
    pub async fn join_conference(
        &self,
        conference: LegId,
        leg: LegId,
        role: PartyRole,
    ) -> Result<(), RuntimeError> {
        let send = |rate, role| {
            self.request(conference, move |reply| {
                Command::Conference(ConferenceCommand::Join { conference, leg, role, rate, reply })
            })
        };
        if self.shard_index(conference) == self.shard_index(leg) {
            return send(None, role).await?;
        }
        let unknown = || RuntimeError::Engine(crate::EngineError::UnknownLeg(leg).to_string());
        let rate = self.leg_rate(leg).await?.ok_or_else(unknown)?;
        send(Some(rate), role).await??;
        let half = self
            .request(leg, |reply| Command::BridgeRemote {
                leg,
                peer: conference,
                peer_rate: rate,
                carry_dtmf: true,
                reply,
            })
            .await
            .and_then(|r| r);
        if half.is_err() {
            let drop = |reply| Command::Conference(ConferenceCommand::Drop { conference, leg, reply });
            let _ = self.request(conference, drop).await;
        }
        half
    }

    /// Change who hears `leg` in `conference`.
    pub async fn set_party_role(
        &self,
        conference: LegId,
        leg: LegId,
        role: PartyRole,
    ) -> Result<(), RuntimeError> {
        self.request(conference, |reply| {
            Command::Conference(ConferenceCommand::Role { conference, leg, role, reply })
        })
        .await?
    }

    /// End `conference`: every party leaves it; returns them.
    pub async fn end_conference(&self, conference: LegId) -> Result<Vec<LegId>, RuntimeError> {
        self.request(conference, |reply| Command::Conference(ConferenceCommand::End { conference, reply }))
            .await?
    }

    /// Play `clip` (at [`CONFERENCE_CLIP_RATE`](crate::engine::CONFERENCE_CLIP_RATE)) to everyone in `conference`.
    pub async fn play_to_conference(
        &self,
        conference: LegId,
        clip: Clip,
        overlay: bool,
    ) -> Result<(), RuntimeError> {
        self.request(conference, |reply| {
            Command::Conference(ConferenceCommand::Play { conference, clip, overlay, reply })
        })
        .await?
    }

    /// Stop what plays to `conference` on one track, and what is queued on it.
    pub async fn stop_conference_playback(
        &self,
        conference: LegId,
        overlay: bool,
    ) -> Result<(), RuntimeError> {
        self.request(conference, |reply| {
            Command::Conference(ConferenceCommand::Stop { conference, overlay, reply })
        })
        .await?
    }
}
