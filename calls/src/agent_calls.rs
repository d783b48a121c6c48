//! Call control for browser agents: the calls `bond-agents` reports (an agent
//! accepting a ringing call, placing one, hanging up, mute, hold, DTMF), and
//! dialing `agent:<name>`. What the signalling frames mean stays in
//! `bond-agents`; this side records the calls.
//!
//! A call the agent places is its own leg, parked; the page then dials the
//! customer through the API with `link_to` that call and `bridge_on_answer`
//! (`linked.rs`).

use std::time::Duration;

use bond_agents::AgentControl;
use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::Codec;
use bond_media_engine::leg::DtmfTiming;
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::LegId;
use bond_store::{CallId, CallRecord, Connection, Ending};

use super::dial::{new_call, no_route, outgoing_call, Dial};
use super::error::CallError;
use super::service::{CallService, Hold};

/// How long an agent's browser may ring (Telnyx `timeout_secs` overrides).
const DEFAULT_RING_SECS: i64 = 30;

/// How digits an agent presses are played to the other party.
const AGENT_DIGITS: DtmfTiming = DtmfTiming { tone_ms: 100, gap_ms: 60 };

impl AgentControl for CallService {
    fn agents(&self) -> &bond_agents::Agents {
        &self.agents
    }

    fn engine_for(&self, call: &CallId) -> EngineHandle {
        // Near the call it will be bridged with, or the call it is to supervise.
        let near = self.waiting_link(call).or_else(|| {
            self.live.read(call, |c| c.supervising.as_ref().map(|s| s.supervise.call.clone())).flatten()
        });
        self.engine_near_link(near.as_ref())
    }

    async fn accepted(&self, call: &CallId, leg: LegId, codec: Codec) -> Result<(), String> {
        self.leg_up(call, leg).await;
        match self.mark_call_answered(call, codec.encoding_name(), codec.sample_rate().hz()).await {
            Ok(Some(record)) => {
                if let Some(limit) = record.time_limit_secs {
                    self.limit_time(call, limit);
                }
                Ok(())
            }
            Ok(None) => {
                self.registry.remove(leg);
                let _ = self.engine.hangup(leg).await;
                Err("the call has ended".into())
            }
            Err(e) => {
                self.end(call, Ending::UNSPECIFIED).await;
                Err(format!("could not record the answer: {e}"))
            }
        }
    }

    async fn connection(&self, organization_id: &str, connection_id: &str) -> Result<Connection, String> {
        match self.store.get_connection(organization_id, connection_id).await {
            Ok(Some(c)) if c.active => Ok(c),
            Ok(_) => Err(format!("connection {connection_id} is missing or not active")),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn placed(
        &self,
        connection: &Connection,
        call: &CallId,
        from: String,
        to: String,
        leg: LegId,
        codec: Codec,
    ) -> Result<(), String> {
        let mut new = new_call(connection, "incoming", from, to);
        new.call_control_id = call.clone();
        let extra = serde_json::Map::new();
        match self.record_answered(&new, leg, codec.encoding_name(), codec.sample_rate(), extra).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("could not record the call: {e}")),
        }
    }

    async fn availability_changed(&self, organization_id: &str) {
        self.route(organization_id).await;
    }

    async fn ended(&self, call: &CallId, ending: Ending) {
        self.end(call, ending).await;
    }

    async fn add_ice_candidate(&self, call: &CallId, candidate: String) -> Result<(), String> {
        let leg = self.registry.leg(call).ok_or("the call has no media connection yet: accept it first")?;
        self.engine.add_ice_candidate(leg, candidate).await.map_err(|e| e.to_string())
    }

    async fn mute(&self, organization_id: &str, call: &CallId, muted: bool) -> Result<(), String> {
        let call = self.live_record(organization_id, call).await?;
        self.set_mute(&call, Some(muted), None).await.map_err(detail)
    }

    async fn hold(&self, organization_id: &str, call: &CallId, held: bool) -> Result<(), String> {
        let call = self.live_record(organization_id, call).await?;
        CallService::hold(self, &call, if held { Hold::Silence } else { Hold::Off }).await.map_err(detail)
    }

    async fn digits_to_partner(
        &self,
        organization_id: &str,
        call: &CallId,
        digits: Vec<DtmfDigit>,
    ) -> Result<(), String> {
        let call = self.live_record(organization_id, call).await?;
        let partner = call.bridged_with.ok_or("the call is not bridged")?;
        let partner = match self.store.get_call(organization_id, &partner).await {
            Ok(Some(p)) => p,
            _ => return Err("the other party has gone".into()),
        };
        self.send_dtmf(&partner, digits, AGENT_DIGITS).await.map_err(detail)
    }
}

impl CallService {
    /// Dial `agent:<name>`: ring the agent's browser. 422 when it is not registered.
    pub(super) async fn dial_agent(
        &self,
        connection: &Connection,
        dial: Dial,
        agent: &str,
    ) -> Result<CallRecord, CallError> {
        let org = &connection.organization_id;
        if !self.agents.is_registered(org, agent) {
            return Err(no_route(&format!("Agent '{agent}' is not registered.")));
        }
        let ring_secs = dial.timeout_secs.unwrap_or(DEFAULT_RING_SECS).max(1) as u64;
        let new = outgoing_call(connection, dial);
        let call = self.record_initiated(&new, serde_json::Map::new()).await?;
        let id = call.call_control_id.clone();
        self.agents.ring(org, agent, &id, &call.from, &call.to);
        let service = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(ring_secs)).await;
            if service.agents.is_ringing(&id) {
                service.end(&id, Ending { cause: "timeout", source: "callee" }).await;
            }
        });
        Ok(call)
    }

    /// The record of live `call`, for an agent's mute, hold and DTMF.
    async fn live_record(&self, organization_id: &str, call: &CallId) -> Result<CallRecord, String> {
        match self.store.get_call(organization_id, call).await {
            Ok(Some(record)) if record.is_alive() => Ok(record),
            Ok(_) => Err("the call has ended".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// What the browser is told when call control refuses: the reason, unless it
/// is Bond's own failure (logged, not shown).
fn detail(error: CallError) -> String {
    match error {
        CallError::Store(_) | CallError::Engine(_) | CallError::Internal(_) => {
            tracing::error!(%error, "an agent's request failed");
            "an unexpected error occurred".into()
        }
        refused => refused.to_string(),
    }
}
