//! Ringback: what a call hears while a party it is to be bridged with rings
//! (`bridge` with `play_ringtone`, a voice agent's transfer). The country's
//! tone (`bond_codecs::ringtone`) loops as the call's hold source: clips
//! still play over it (an agent's words, queued or yet to come) and it fills
//! the gaps between them, until the bridge is made or the ringing call ends
//! unanswered, when the call comes off hold. The listener's entry names the
//! dial, the dial's names the listener, so either end finds the other.

use bond_codecs::ringtone::Ringtone;
use bond_media_engine::leg::MediaSource;
use bond_store::{CallId, CallRecord};

use super::error::CallError;
use super::service::CallService;

impl CallService {
    /// Play `tone` to `listener` until [`stop_ringback`](Self::stop_ringback),
    /// which the bridge with `dial` and `dial`'s end call. A ringback already
    /// playing to `listener` stops first.
    pub(super) async fn ring_back(
        &self,
        listener: &CallId,
        dial: &CallId,
        tone: &'static Ringtone,
    ) -> Result<(), CallError> {
        let leg = self.registry.leg(listener).ok_or(CallError::Ended)?;
        let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
        self.stop_ringback(listener).await;
        let source = MediaSource::Play { samples: tone.samples(rate), rate, repeat: true };
        self.engine.hold(leg, Some(source)).await?;
        self.live.update(listener, |c| c.ringback = Some(dial.clone()));
        self.live.update(dial, |c| c.rings_for = Some(listener.clone()));
        tracing::info!(call = %listener, %dial, ringtone = tone.name, "ringing back");
        Ok(())
    }

    /// Ring back to `listener` while `dial` rings (and, unless `until_answer`,
    /// while its answer is screened), as [`ring_back`](Self::ring_back) does;
    /// a dial that ended (or answered) before the ringback began stops it.
    pub(super) async fn ring_back_for_dial(
        &self,
        listener: &CallRecord,
        dial: &CallId,
        tone: &'static Ringtone,
        until_answer: bool,
    ) -> Result<(), CallError> {
        self.ring_back(&listener.call_control_id, dial, tone).await?;
        let now = self.store.get_call(&listener.organization_id, dial).await?;
        let rang = now.is_none_or(|c| c.ended_at.is_some() || (until_answer && c.answered_at.is_some()));
        if rang {
            self.ringing_ended(dial).await;
        }
        Ok(())
    }

    /// `listener` stops hearing its ringback, if it hears one.
    pub(super) async fn stop_ringback(&self, listener: &CallId) {
        let Some(dial) = self.live.update(listener, |c| c.ringback.take()) else { return };
        self.live.update(&dial, |c| c.rings_for.take_if(|l| l == listener));
        if let Some(leg) = self.registry.leg(listener) {
            let _ = self.engine.hold(leg, None).await;
        }
    }

    /// `dial` ended: the call that heard it ring stops hearing that.
    pub(super) async fn ringing_ended(&self, dial: &CallId) {
        let Some(listener) = self.live.update(dial, |c| c.rings_for.take()) else { return };
        let rings_for_dial = self.live.read(&listener, |c| c.ringback.as_ref() == Some(dial));
        if rings_for_dial == Some(true) {
            self.stop_ringback(&listener).await;
        }
    }
}
