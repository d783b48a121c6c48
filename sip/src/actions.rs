//! What call control does to a SIP call: answer or reject one that waits for
//! the application, and release one it is ending.

use bond_codecs::Codec;
use bond_media_engine::runtime::{EngineHandle, RuntimeError};
use bond_media_engine::sdp;
use bond_store::CallId;
use rsipstack::sip::{Header, StatusCode};

use super::media;
use super::registry::SipCalls;

/// Why an incoming call could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("the call is not an incoming call waiting to be answered")]
    NotWaiting,
    #[error("the caller has gone")]
    Ended,
    #[error(transparent)]
    Engine(#[from] RuntimeError),
}

impl SipCalls {
    /// An incoming call not yet answered or rejected.
    pub fn is_waiting(&self, call: &CallId) -> bool {
        self.get(call).is_some_and(|c| c.incoming && !c.answered)
    }

    /// 200 OK with Bond's SDP, then media both ways. Returns the codec.
    pub async fn answer(&self, call: &CallId, engine: &EngineHandle) -> Result<Codec, AnswerError> {
        let sip_call = self.get(call).filter(|c| c.incoming && !c.answered).ok_or(AnswerError::NotWaiting)?;
        let plan = sip_call.media.plan.ok_or(AnswerError::NotWaiting)?;
        let answer = sdp::write(&sip_call.media.local);
        sip_call
            .dialog
            .accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(answer.into_bytes()))
            .map_err(|_| AnswerError::Ended)?;
        let ring_timer = self.update(call, |c| {
            c.answered = true;
            c.ring_timer.take()
        });
        if let Some(timer) = ring_timer.flatten() {
            timer.abort();
        }
        let rtp = media::rtp_media(&plan, true, &sip_call.media.local.crypto);
        engine.update_rtp(sip_call.media.leg, rtp, plan.remote).await?;
        Ok(plan.codec)
    }

    /// A final error response (`status`) to a waiting call, which is then
    /// forgotten; false when it was not waiting.
    pub fn reject(&self, call: &CallId, status: u16) -> bool {
        if !self.is_waiting(call) {
            return false;
        }
        let Some(sip_call) = self.remove(call) else { return false };
        let _ = sip_call.dialog.reject(Some(StatusCode::from(status)), None);
        true
    }

    /// End the SIP side of a call Bond is ending: BYE, CANCEL or a 480.
    pub fn release(&self, call: &CallId) {
        let Some(sip_call) = self.remove(call) else { return };
        tokio::spawn(async move {
            let result = if sip_call.incoming && !sip_call.answered {
                sip_call.dialog.reject(Some(StatusCode::TemporarilyUnavailable), None)
            } else {
                sip_call.dialog.hangup().await
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "could not end a SIP dialog");
            }
        });
    }
}
