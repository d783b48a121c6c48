//! Call control for SIP legs: incoming calls parked until answered, outgoing
//! calls through a trunk, and what the far end does inside the dialog.

use bond_store::CallId;
use std::net::IpAddr;
use std::time::Duration;

use bond_codecs::dtmf::DtmfDigit;
use bond_media_engine::runtime::{EngineHandle, StreamInput};
use bond_media_engine::sdp::{self, SessionDescription};
use rsipstack::dialog::dialog::TerminatedReason;
use rsipstack::sip::{Header, StatusCode};

use super::error::CallError;
use super::registry::Ending;
use super::service::{outgoing_call, CallService, Dial};
use crate::sip::media::{self, CallMedia};
use crate::sip::{self as sip, Destination, SipCall, SipCalls, SipSettings};
use bond_store::db::DbError;
use bond_store::{CallRecord, Connection};

/// How long an outgoing SIP call rings when the dial does not say.
const DEFAULT_RING_SECS: i64 = 30;

/// A new INVITE, checked and with its leg open, becoming a call.
#[derive(Debug)]
pub struct IncomingSip {
    pub from: String,
    pub from_display_name: Option<String>,
    pub to: String,
    /// Encoding names in the offer, for `call.initiated`'s `offered_codecs`.
    pub offered_codecs: String,
    pub call: SipCall,
}

/// Where an incoming INVITE may land (see `CallService::sip_connections_for`).
#[derive(Debug)]
pub enum SipCandidates {
    /// The connection allowing the source address.
    Allowed(Box<(Connection, SipSettings)>),
    /// The connections whose credentials the caller may answer a challenge with.
    Authenticate(Vec<(Connection, SipSettings)>),
}

impl CallService {
    pub fn sip(&self) -> &SipCalls {
        &self.sip
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    /// The SIP connections an INVITE from `source` may land on: the one whose
    /// `bond.sip.allowed_ips` holds `source` alone, else those with `inbound_auth`.
    pub async fn sip_connections_for(&self, source: IpAddr) -> Result<SipCandidates, DbError> {
        let connections = self.store.sip_connections().await?;
        let mut all: Vec<_> =
            connections.into_iter().filter_map(|c| SipSettings::of(&c).map(|s| (c, s))).collect();
        let claimed: Vec<usize> =
            (0..all.len()).filter(|&i| all[i].1.allowed_ips.contains(&source)).collect();
        // Oldest first; an address two organizations claim (kept from before
        // that was refused) lands on neither.
        let orgs = |i: &usize| all[*i].0.organization_id.as_str();
        if claimed.iter().any(|i| orgs(i) != orgs(&claimed[0])) {
            tracing::warn!(%source, "INVITE from an address two organizations claim: refused");
            return Ok(SipCandidates::Authenticate(Vec::new()));
        }
        Ok(match claimed.first() {
            Some(&i) => SipCandidates::Allowed(Box::new(all.swap_remove(i))),
            None => {
                all.retain(|(_, s)| s.inbound_auth.is_some());
                SipCandidates::Authenticate(all)
            }
        })
    }

    /// Record an incoming SIP call (parked, not answered) and send `call.initiated`.
    pub async fn sip_incoming(
        &self,
        connection: &Connection,
        incoming: IncomingSip,
    ) -> Result<CallRecord, DbError> {
        let mut new = super::service::new_call(connection, "incoming", incoming.from, incoming.to);
        new.from_display_name = incoming.from_display_name;
        let leg = incoming.call.media.leg;
        let mut sip_call = incoming.call;
        sip_call.call_control_id = new.call_control_id.clone();
        self.registry.insert(&new.call_control_id, leg);
        self.sip.insert(sip_call);
        let mut extra = serde_json::Map::new();
        extra.insert("offered_codecs".into(), incoming.offered_codecs.into());
        match self.record_initiated(&new, extra).await {
            Ok(call) => Ok(call),
            Err(e) => {
                self.registry.remove(leg);
                self.sip.remove(&new.call_control_id);
                Err(e)
            }
        }
    }

    /// `answer`: 200 OK with Bond's SDP; media flows both ways.
    pub async fn answer(&self, call: &CallRecord) -> Result<(), CallError> {
        let sip_call = self.sip.get(&call.call_control_id).filter(|c| c.incoming && !c.answered);
        let Some(sip_call) = sip_call else {
            return Err(not_waiting(call, "answer"));
        };
        let plan = sip_call.media.plan.ok_or_else(|| not_waiting(call, "answer"))?;
        let answer = sdp::write(&sip_call.media.local);
        sip_call
            .dialog
            .accept(Some(vec![Header::ContentType("application/sdp".into())]), Some(answer.into_bytes()))
            .map_err(|_| CallError::Ended)?;
        self.sip.update(&call.call_control_id, |c| c.answered = true);
        self.engine.update_rtp(sip_call.media.leg, media::rtp_media(&plan, true), plan.remote).await?;
        self.record_answer(&call.call_control_id, plan.codec).await.map_err(CallError::from)
    }

    /// `reject`: a final error response (`cause` USER_BUSY is 486, else 603).
    pub async fn reject(&self, call: &CallRecord, cause: Option<&str>) -> Result<(), CallError> {
        let waiting = self.sip.get(&call.call_control_id).is_some_and(|c| c.incoming && !c.answered);
        if !waiting {
            return Err(not_waiting(call, "reject"));
        }
        let status = cause.map_or(Some(603), sip::status_of_reject_cause).ok_or_else(|| {
            CallError::invalid("10032", "cause must be CALL_REJECTED or USER_BUSY", "/cause")
        })?;
        if let Some(sip_call) = self.sip.remove(&call.call_control_id) {
            let _ = sip_call.dialog.reject(Some(StatusCode::from(status)), None);
        }
        let cause = if status == 486 { "user_busy" } else { "call_rejected" };
        self.end(&call.call_control_id, Ending { cause, source: "callee" }).await;
        Ok(())
    }

    /// An incoming call still waiting for `answer` or `reject` when its ring
    /// timeout passes: 480 to the caller, and the call ends as `timeout`.
    pub async fn expire_unanswered(&self, call_control_id: &CallId) {
        let waiting = self.sip.get(call_control_id).is_some_and(|c| c.incoming && !c.answered);
        if !waiting {
            return;
        }
        if let Some(sip_call) = self.sip.remove(call_control_id) {
            let _ = sip_call.dialog.reject(Some(StatusCode::TemporarilyUnavailable), None);
        }
        tracing::info!(call = %call_control_id, "incoming call not answered in time: 480, ended");
        self.end(call_control_id, Ending { cause: "timeout", source: "unknown" }).await;
    }

    /// Dial a number through the connection's trunk, or a `sip:` URI.
    pub(super) async fn dial_sip(
        &self,
        connection: &Connection,
        dial: Dial,
    ) -> Result<CallRecord, CallError> {
        let settings = SipSettings::of(connection);
        let destination = Destination::of(&dial.endpoint, settings.as_ref())
            .map_err(|detail| CallError::invalid("10002", detail, "/to"))?;
        let stack =
            self.sip.stack().cloned().ok_or_else(|| {
                CallError::invalid("10002", "SIP is not running in this Bond instance.", "/to")
            })?;
        let codecs = settings.map_or_else(|| sip::settings::DEFAULT_CODECS.to_vec(), |s| s.codecs);
        let engine = self.engine_near_link(dial.near_call());
        let (leg, port) =
            media::open_leg(&engine, media::offer_rtp_media(&codecs), None, stack.rtp_timeout).await?;
        let local = media::offer_media(&codecs, stack.media_ip, port);
        let ring_secs = dial.timeout_secs.unwrap_or(DEFAULT_RING_SECS);
        let amd = dial.amd;
        let new = outgoing_call(connection, dial);
        self.registry.insert(&new.call_control_id, leg);
        let call = match self.record_initiated(&new, serde_json::Map::new()).await {
            Ok(call) => call,
            Err(e) => {
                self.registry.remove(leg);
                let _ = self.engine.hangup(leg).await;
                return Err(CallError::from(e));
            }
        };
        self.defer_amd(&call.call_control_id, amd);
        let caller = sip::Caller { from: &call.from, display_name: call.from_display_name.as_deref() };
        let (dialog, outcome) = match sip::invite(&stack, &destination, caller, sdp::write(&local)) {
            Ok(started) => started,
            Err(detail) => {
                self.end(&call.call_control_id, Ending { cause: "unspecified", source: "unknown" }).await;
                return Err(CallError::invalid("10002", detail, "/to"));
            }
        };
        self.sip.insert(SipCall {
            call_control_id: call.call_control_id.clone(),
            connection_id: connection.id.clone(),
            dialog,
            incoming: false,
            answered: false,
            media: CallMedia { leg, local, plan: None },
            codecs,
        });
        let service = self.clone();
        let id = call.call_control_id.clone();
        tokio::spawn(async move { service.await_sip_answer(id, outcome, ring_secs).await });
        Ok(call)
    }

    /// Follow an outgoing INVITE to its final response (or ring timeout).
    async fn await_sip_answer(
        self,
        call_control_id: CallId,
        mut outcome: tokio::task::JoinHandle<rsipstack::dialog::invitation::InviteAsyncResult>,
        ring_secs: i64,
    ) {
        let ring = Duration::from_secs(ring_secs.max(1) as u64);
        let mut timed_out = false;
        let result = match tokio::time::timeout(ring, &mut outcome).await {
            Ok(result) => result,
            Err(_) => {
                timed_out = true;
                if let Some(sip_call) = self.sip.get(&call_control_id) {
                    let _ = sip_call.dialog.cancel().await;
                }
                outcome.await
            }
        };
        let response = match result {
            Ok(Ok((_, response))) => response,
            Ok(Err(e)) => {
                tracing::info!(call = %call_control_id, error = %e, "outgoing INVITE failed");
                None
            }
            Err(_) => None,
        };
        let status = response.as_ref().map_or(0, |r| r.status_code.code());
        if (200..300).contains(&status) && !timed_out {
            let body = response.map(|r| r.body).unwrap_or_default();
            if let Err(reason) = self.sip_answered(&call_control_id, &body).await {
                tracing::info!(call = %call_control_id, %reason, "the answer's SDP is unusable; hanging up");
                self.end(&call_control_id, Ending { cause: "unspecified", source: "unknown" }).await;
            }
            return;
        }
        // Already ended from the API (its CANCEL is what came back)?
        if self.sip.remove(&call_control_id).is_none() {
            return;
        }
        let cause = if timed_out { "timeout" } else { sip::cause_of_status(status) };
        self.end(&call_control_id, Ending { cause, source: "callee" }).await;
    }

    /// The callee answered: apply its SDP, record the answer, start pending detection.
    async fn sip_answered(&self, call_control_id: &CallId, body: &[u8]) -> Result<(), String> {
        let sip_call = self.sip.get(call_control_id).ok_or("the call has ended")?;
        let plan = match SessionDescription::parse(body) {
            Ok(answer) => sdp::accept_answer(&answer, &sip_call.codecs).map_err(|e| e.to_string())?,
            // A 200 without SDP keeps what early media settled.
            Err(_) if body.is_empty() && sip_call.media.plan.is_some() => {
                sip_call.media.plan.expect("checked")
            }
            Err(e) => return Err(e.to_string()),
        };
        self.apply_plan(call_control_id, &sip_call, plan, true).await?;
        self.sip.update(call_control_id, |c| c.answered = true);
        if let Some(config) = self.live.update(call_control_id, |c| c.pending_amd.take()) {
            let _ = self.engine.start_amd(sip_call.media.leg, config).await;
        }
        self.record_answer(call_control_id, plan.codec).await.map_err(|e| e.to_string())
    }

    /// 183 (or 180) with SDP: play the callee's early media.
    pub async fn sip_early_media(&self, sip_call_id: &str, body: &[u8]) {
        let Some(id) = self.sip.by_sip_call_id(sip_call_id) else { return };
        let Some(sip_call) = self.sip.get(&id).filter(|c| !c.incoming && !c.answered) else { return };
        tracing::info!(call = %id, early_media = !body.is_empty(), "call ringing");
        if body.is_empty() {
            return;
        }
        let plan = SessionDescription::parse(body)
            .map_err(|e| e.to_string())
            .and_then(|a| sdp::accept_answer(&a, &sip_call.codecs).map_err(|e| e.to_string()));
        match plan {
            Ok(plan) => {
                if let Err(e) = self.apply_plan(&id, &sip_call, plan, false).await {
                    tracing::info!(call = %id, error = %e, "early media not applied");
                }
            }
            Err(e) => tracing::info!(call = %id, error = %e, "unusable early-media SDP"),
        }
    }

    /// Point the call's leg at what offer/answer settled.
    async fn apply_plan(
        &self,
        call_control_id: &CallId,
        sip_call: &SipCall,
        plan: sdp::MediaPlan,
        answered: bool,
    ) -> Result<(), String> {
        self.engine
            .update_rtp(sip_call.media.leg, media::rtp_media(&plan, answered), plan.remote)
            .await
            .map_err(|e| e.to_string())?;
        self.sip.update(call_control_id, |c| c.media.plan = Some(plan));
        Ok(())
    }

    /// `call.answered` at the codec's rate; the time limit runs from the answer.
    async fn record_answer(
        &self,
        call_control_id: &CallId,
        codec: bond_codecs::Codec,
    ) -> Result<(), DbError> {
        let answered =
            self.mark_call_answered(call_control_id, codec.encoding_name(), codec.sample_rate().hz()).await?;
        if let Some(limit) = answered.and_then(|call| call.time_limit_secs) {
            self.enforce_time_limit(call_control_id.to_owned(), limit);
        }
        Ok(())
    }

    /// The far end ended the dialog (BYE, CANCEL, no ACK).
    pub async fn sip_terminated(&self, sip_call_id: &str, reason: &TerminatedReason) {
        let Some(id) = self.sip.by_sip_call_id(sip_call_id) else { return };
        // An unanswered outgoing call ends with its INVITE's final response.
        if self.sip.get(&id).is_some_and(|c| !c.incoming && !c.answered) {
            return;
        }
        let Some(sip_call) = self.sip.remove(&id) else { return };
        let far_end = if sip_call.incoming { "caller" } else { "callee" };
        let ending = match reason {
            TerminatedReason::UacCancel => Ending { cause: "originator_cancel", source: "caller" },
            TerminatedReason::Timeout => Ending { cause: "unspecified", source: "unknown" },
            _ => Ending { cause: "normal_clearing", source: far_end },
        };
        self.end(&id, ending).await;
    }

    /// Hang up the SIP side of a call Bond is ending: BYE, CANCEL or a 480.
    pub(super) fn release_sip(&self, call_control_id: &CallId) {
        let Some(sip_call) = self.sip.remove(call_control_id) else { return };
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

    /// A re-INVITE or UPDATE: Bond's new SDP, or the status refusing it.
    pub async fn sip_session_update(&self, sip_call_id: &str, body: &[u8]) -> Result<String, StatusCode> {
        let id = self.sip.by_sip_call_id(sip_call_id).ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let sip_call = self.sip.get(&id).ok_or(StatusCode::CallTransactionDoesNotExist)?;
        if body.is_empty() {
            return Ok(sdp::write(&sip_call.media.local));
        }
        let offer = SessionDescription::parse(body).map_err(|_| StatusCode::BadRequest)?;
        let mut media = sip_call.media.clone();
        let plan = media::reanswer(&mut media, &offer, &sip_call.codecs)
            .map_err(|_| StatusCode::NotAcceptableHere)?;
        self.engine
            .update_rtp(
                media.leg,
                media::rtp_media(&plan, sip_call.answered || !sip_call.incoming),
                plan.remote,
            )
            .await
            .map_err(|_| StatusCode::NotAcceptableHere)?;
        let answer = sdp::write(&media.local);
        self.sip.update(&id, |c| c.media = media);
        Ok(answer)
    }

    /// A digit signalled in SIP INFO.
    pub async fn sip_dtmf(&self, sip_call_id: &str, digit: DtmfDigit) {
        let Some(id) = self.sip.by_sip_call_id(sip_call_id) else { return };
        if let Some(leg) = self.registry.leg(&id) {
            self.engine.stream_input(leg, StreamInput::Dtmf(digit));
        }
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
