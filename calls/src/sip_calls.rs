//! Call control for SIP legs: the incoming calls `bond-sip` reports, parked
//! until answered or rejected, and outgoing calls through a trunk. What the
//! SIP messages mean stays in `bond-sip`; this side records the calls.

use std::time::Duration;

use bond_codecs::Codec;
use bond_sip::{
    AnswerError, CallControl, Destination, IncomingCall, IncomingRefused, Outgoing, ReferProgress,
    ReferRefusal, SipCalls, SipSettings,
};
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord, Connection, Ending};

use super::dial::{new_call, outgoing_call, Dial};
use super::endpoint::Endpoint;
use super::error::CallError;
use super::service::CallService;
use bond_sip::media::{self, CallMedia};
use bond_sip::settings::SrtpMode;

/// How long an outgoing SIP call rings when the dial does not say.
const DEFAULT_RING_SECS: i64 = 30;

impl CallControl for CallService {
    async fn sip_connections(&self) -> Result<Vec<Connection>, DbError> {
        self.store.sip_connections().await
    }

    async fn incoming(
        &self,
        connection: &Connection,
        incoming: IncomingCall,
        max_concurrent_calls: Option<usize>,
    ) -> Result<(), IncomingRefused> {
        let mut new = new_call(connection, "incoming", incoming.from, incoming.to);
        new.call_control_id = incoming.call_control_id;
        new.from_display_name = incoming.from_display_name;
        self.registry.insert(&new.call_control_id, incoming.leg);
        let mut extra = serde_json::Map::new();
        extra.insert("offered_codecs".into(), incoming.offered_codecs.into());
        if let Err(e) = self.record_sip_initiated(&new, extra, max_concurrent_calls).await {
            self.registry.remove(incoming.leg);
            return Err(e);
        }
        Ok(())
    }

    async fn answered(&self, call: &CallId, codec: Codec) -> Result<(), DbError> {
        if let Some(config) = self.live.update(call, |c| c.pending_amd.take()) {
            if let Some(leg) = self.registry.leg(call) {
                let _ = self.engine.start_amd(leg, config).await;
            }
        }
        self.record_answer(call, codec).await
    }

    async fn early_media(&self, call: &CallId) {
        self.early_media_started(call).await;
    }

    async fn ended(&self, call: &CallId, ending: Ending) {
        self.end(call, ending).await;
    }

    async fn referred(&self, call: &CallId, target: String) -> Result<(), ReferRefusal> {
        self.peer_referred(call, target).await
    }

    async fn refer_progress(&self, call: &CallId, progress: ReferProgress) {
        self.refer_moved(call, progress).await;
    }
}

impl CallService {
    /// The live SIP calls, which `bond-sip` fills once it starts.
    pub fn sip(&self) -> &SipCalls {
        &self.sip
    }

    pub fn engine(&self) -> &bond_media_engine::runtime::EngineHandle {
        &self.engine
    }

    /// `answer`: 200 OK with Bond's SDP; media flows both ways.
    pub async fn answer(&self, call: &CallRecord) -> Result<(), CallError> {
        let codec = match self.sip.answer(&call.call_control_id, &self.engine).await {
            Ok(codec) => codec,
            Err(AnswerError::NotWaiting) => return Err(not_waiting(call, "answer")),
            Err(AnswerError::Ended) => return Err(CallError::Ended),
            Err(AnswerError::Engine(e)) => return Err(e.into()),
        };
        self.record_answer(&call.call_control_id, codec).await.map_err(CallError::from)
    }

    /// `reject`: a final error response (`cause` USER_BUSY is 486, else 603).
    pub async fn reject(&self, call: &CallRecord, cause: Option<&str>) -> Result<(), CallError> {
        if !self.sip.is_waiting(&call.call_control_id) {
            return Err(not_waiting(call, "reject"));
        }
        let status = cause.map_or(Some(603), bond_sip::status_of_reject_cause).ok_or_else(|| {
            CallError::invalid("10032", "cause must be CALL_REJECTED or USER_BUSY", "/cause")
        })?;
        self.sip.reject(&call.call_control_id, status);
        let cause = if status == 486 { "user_busy" } else { "call_rejected" };
        self.end(&call.call_control_id, Ending { cause, source: "callee" }).await;
        Ok(())
    }

    /// Dial a number through the connection's trunk, or a `sip:` URI.
    pub(super) async fn dial_sip(
        &self,
        connection: &Connection,
        dial: Dial,
    ) -> Result<CallRecord, CallError> {
        let settings = SipSettings::of(connection);
        let destination = match &dial.endpoint {
            Endpoint::E164(number) => Destination::number(number, settings.as_ref()),
            Endpoint::Sip(uri) => Ok(Destination::uri(uri, settings.as_ref())),
            _ => Err("not a SIP destination".into()),
        }
        .map_err(|detail| CallError::invalid("10002", detail, "/to"))?;
        let stack =
            self.sip.stack().cloned().ok_or_else(|| {
                CallError::invalid("10002", "SIP is not running in this Bond instance.", "/to")
            })?;
        stack.reach(&destination).await.map_err(|detail| CallError::invalid("10002", detail, "/to"))?;
        let connection_srtp = settings.as_ref().map_or(SrtpMode::Off, |s| s.srtp);
        let srtp = if dial.srtp { SrtpMode::Required } else { connection_srtp };
        let codecs = settings.map_or_else(|| bond_sip::settings::DEFAULT_CODECS.to_vec(), |s| s.codecs);
        let engine = self.engine_near_link(dial.near_call());
        let (leg, port) =
            media::open_leg(&engine, media::offer_rtp_media(&codecs, srtp), None, stack.rtp_timeout).await?;
        let local = media::offer_media(&codecs, stack.media_ip, port, srtp);
        let ring = Duration::from_secs(dial.timeout_secs.unwrap_or(DEFAULT_RING_SECS).max(1) as u64);
        let headers = dial.custom_headers.clone();
        let amd = dial.amd;
        let new = outgoing_call(connection, dial);
        self.registry.insert(&new.call_control_id, leg);
        // Counted among the connection's SIP calls (no limit on placing them).
        let call = match self.record_sip_initiated(&new, serde_json::Map::new(), None).await {
            Ok(call) => call,
            Err(e) => {
                self.registry.remove(leg);
                let _ = self.engine.hangup(leg).await;
                return Err(match e {
                    IncomingRefused::Store(e) => CallError::from(e),
                    IncomingRefused::AtCapacity => CallError::Internal(e.to_string()),
                });
            }
        };
        self.defer_amd(&call.call_control_id, amd);
        let outgoing = Outgoing {
            call_control_id: call.call_control_id.clone(),
            connection_id: connection.id.clone(),
            destination,
            from: call.from.clone(),
            from_display_name: call.from_display_name.clone(),
            media: CallMedia { leg, local, plan: None },
            codecs,
            ring,
            headers,
        };
        if let Err(detail) = self.sip.dial(self.clone(), outgoing) {
            self.end(&call.call_control_id, Ending::UNSPECIFIED).await;
            return Err(CallError::invalid("10002", detail, "/to"));
        }
        Ok(call)
    }

    /// `call.answered` at the codec's rate; the time limit runs from the answer.
    async fn record_answer(&self, call_control_id: &CallId, codec: Codec) -> Result<(), DbError> {
        let answered =
            self.mark_call_answered(call_control_id, codec.encoding_name(), codec.sample_rate().hz()).await?;
        if let Some(limit) = answered.and_then(|call| call.time_limit_secs) {
            self.limit_time(call_control_id, limit);
        }
        Ok(())
    }

    /// Hang up the SIP side of a call Bond is ending: BYE, CANCEL or a 480.
    pub(super) fn release_sip(&self, call_control_id: &CallId) {
        self.sip.release(call_control_id);
    }
}

fn not_waiting(call: &CallRecord, action: &str) -> CallError {
    CallError::invalid(
        "90015",
        format!(
            "Only an incoming call waiting to be answered can be sent {action}; this call is {}.",
            call.state
        ),
        "/call_control_id",
    )
}
