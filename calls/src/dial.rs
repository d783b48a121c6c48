//! Placing calls: a validated [`Dial`] to its endpoint (a built-in `loop:`
//! leg, a SIP number or URI, a number through Telnyx, an agent), and the
//! stored call it becomes.

use bond_codecs::SampleRate;
use bond_media_engine::leg::MediaSource;
use bond_speech::audio::wav;
use bond_store::clock::rfc3339_now;
use bond_store::{CallId, CallRecord, Connection, NewCall};
use serde_json::Map;

use super::amd::AmdRequest;
use super::endpoint::{Endpoint, LoopKind};
use super::error::CallError;
use super::linked::Link;
use super::registry::Ending;
use super::service::CallService;
use super::telnyx::TelnyxSettings;

/// Rate of the built-in legs.
const LOOP_RATE: SampleRate = SampleRate::Hz8000;
/// Webhook timeout when the connection sets none.
const DEFAULT_WEBHOOK_TIMEOUT_SECS: i64 = 10;

/// A validated dial request.
#[derive(Debug, Clone)]
pub struct Dial {
    pub to: String,
    pub endpoint: Endpoint,
    pub from: String,
    pub from_display_name: Option<String>,
    pub client_state: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_failover_url: Option<String>,
    pub time_limit_secs: Option<i64>,
    /// How long an outgoing call may ring (Telnyx `timeout_secs`, default 30).
    pub timeout_secs: Option<i64>,
    /// Answering-machine detection from the answer on.
    pub amd: Option<AmdRequest>,
    /// Telnyx `link_to` (and `bridge_on_answer`).
    pub link: Option<Link>,
    /// Telnyx `supervise_call_control_id` and `supervisor_role`.
    pub supervise: Option<super::supervise::Supervise>,
    /// Who placed it (see `NewCall::placed_by`).
    pub placed_by: Option<String>,
    /// Telnyx `media_encryption: "SRTP"`: the call's media must be SRTP.
    pub srtp: bool,
    /// Telnyx `custom_headers`: added to a SIP call's INVITE.
    pub custom_headers: Vec<bond_sip::ExtraHeader>,
}

impl Dial {
    /// The call this one should share an engine with: its link, or the call it supervises.
    pub fn near_call(&self) -> Option<&CallId> {
        self.link.as_ref().map(|l| &l.call).or(self.supervise.as_ref().map(|s| &s.call))
    }
}

impl CallService {
    /// Place a call; with `bridge_on_answer`, it joins its linked call once answered.
    pub async fn dial(&self, connection: &Connection, dial: Dial) -> Result<CallRecord, CallError> {
        let link = dial.link.clone();
        let call = self.dial_endpoint(connection, dial).await?;
        if let Some(link) = link {
            self.bridge_on_answer(&call.call_control_id, &link).await;
        }
        Ok(call)
    }

    /// Place a call to its endpoint. Built-in `loop:` legs answer at once.
    async fn dial_endpoint(&self, connection: &Connection, dial: Dial) -> Result<CallRecord, CallError> {
        let source = match &dial.endpoint {
            Endpoint::Loop(kind) => self.loop_source(kind)?,
            Endpoint::E164(_) if TelnyxSettings::of(connection).is_some() => {
                return self.dial_through_telnyx(connection, dial).await
            }
            Endpoint::E164(_) | Endpoint::Sip(_) => return self.dial_sip(connection, dial).await,
            Endpoint::Agent(name) => {
                let name = name.clone();
                return self.dial_agent(connection, dial, &name).await;
            }
        };
        let (mut rate, source) = source;
        let amd = dial.amd;
        let linked_leg = dial.link.as_ref().and_then(|l| self.registry.leg(&l.call));
        let generated = matches!(
            &dial.endpoint,
            Endpoint::Loop(LoopKind::Echo | LoopKind::Silence | LoopKind::Tone { .. })
        );
        if let (Some(leg), true) = (linked_leg, generated) {
            // A built-in party made up on the spot speaks at its linked call's rate:
            // their bridge then resamples nothing.
            rate = self.engine.leg_rate(leg).await.ok().flatten().unwrap_or(rate);
        }
        let engine = self.engine_near_link(dial.near_call());
        let leg = match amd {
            // Built-in legs answer at once: detection runs from their first frame.
            Some(amd) => engine.create_local_leg_with_amd(rate, source, amd.config).await,
            None => engine.create_local_leg(rate, source).await,
        }?;
        let new = outgoing_call(connection, dial);
        if let Some(amd) = amd {
            self.live.update(&new.call_control_id, |c| c.amd_mode = Some(amd.mode));
        }
        match self.record_answered(&new, leg, "L16", rate, serde_json::Map::new()).await {
            Ok(call) => {
                if let Some(limit) = call.time_limit_secs {
                    self.limit_time(&call.call_control_id, limit);
                }
                Ok(call)
            }
            Err(e) => {
                self.live.update(&new.call_control_id, |c| c.amd_mode = None);
                Err(CallError::from(e))
            }
        }
    }

    /// Dial a number through Telnyx: the call is `initiated` now; its leg is the
    /// media stream Telnyx opens once the callee answers.
    async fn dial_through_telnyx(
        &self,
        connection: &Connection,
        dial: Dial,
    ) -> Result<CallRecord, CallError> {
        let settings = TelnyxSettings::of(connection).ok_or_else(|| no_route("not a Telnyx connection"))?;
        let amd = dial.amd;
        let new = outgoing_call(connection, dial);
        let call = self.record_initiated(&new, Map::new()).await?;
        self.defer_amd(&call.call_control_id, amd);
        let dialed = self
            .telnyx
            .dial(
                &settings,
                &call.call_control_id,
                &connection.id,
                &self.files.public_url,
                &call.to,
                &call.from,
            )
            .await;
        if let Err(detail) = dialed {
            self.end(&call.call_control_id, Ending::UNSPECIFIED).await;
            return Err(CallError::Carrier { detail, pointer: "/to".into() });
        }
        Ok(call)
    }

    fn loop_source(&self, kind: &LoopKind) -> Result<(SampleRate, MediaSource), CallError> {
        Ok(match kind {
            LoopKind::Echo => (LOOP_RATE, MediaSource::Echo),
            LoopKind::Silence => (LOOP_RATE, MediaSource::Silence),
            LoopKind::Tone { hz } => (LOOP_RATE, MediaSource::Tone { hz: *hz, dbm0: -10.0 }),
            LoopKind::Play { file } => {
                let (rate, samples) = wav::read_file(&self.files.data_dir.join(file))
                    .map_err(|e| CallError::invalid("10002", e, "/to"))?;
                (rate, MediaSource::Play { samples: samples.into(), rate, repeat: false })
            }
        })
    }
}

/// The call a dial places: the dial's fields over the connection's defaults.
pub(super) fn outgoing_call(connection: &Connection, dial: Dial) -> NewCall {
    let mut new = new_call(connection, "outgoing", dial.from, dial.to);
    if let Some(link) = dial.link {
        new.call_session_id = link.call_session_id;
    }
    new.from_display_name = dial.from_display_name;
    new.client_state = dial.client_state;
    if let Some(url) = dial.webhook_url {
        new.webhook_url = Some(url);
    }
    if dial.webhook_failover_url.is_some() {
        new.webhook_failover_url = dial.webhook_failover_url;
    }
    new.time_limit_secs = dial.time_limit_secs;
    new.placed_by = dial.placed_by;
    new
}

/// A call on `connection` with fresh ids, its webhooks going where the connection says.
pub(super) fn new_call(
    connection: &Connection,
    direction: &'static str,
    from: String,
    to: String,
) -> NewCall {
    NewCall {
        call_control_id: CallId::generate(),
        organization_id: connection.organization_id.clone(),
        connection_id: connection.id.clone(),
        call_leg_id: uuid::Uuid::new_v4().to_string(),
        call_session_id: uuid::Uuid::new_v4().to_string(),
        direction,
        from,
        to,
        from_display_name: None,
        client_state: None,
        webhook_url: Some(connection.webhook_event_url.clone()),
        webhook_failover_url: connection.webhook_event_failover_url.clone(),
        webhook_timeout_secs: connection.webhook_timeout_secs.unwrap_or(DEFAULT_WEBHOOK_TIMEOUT_SECS),
        time_limit_secs: None,
        created_at: rfc3339_now(),
        placed_by: None,
    }
}

/// A dial's (or transfer's) caller id: an E.164 number or a `sip:` URI.
pub fn check_from(from: &str) -> Result<(), CallError> {
    match Endpoint::parse(from) {
        Err(_) | Ok(Endpoint::Loop(_)) => {
            Err(CallError::invalid("10002", "from must be an E.164 number or a sip: URI", "/from"))
        }
        Ok(_) => Ok(()),
    }
}

/// A dial's (or transfer's) `timeout_secs` (5-600) and `time_limit_secs` (1-14400).
pub fn check_limits(timeout_secs: Option<i64>, time_limit_secs: Option<i64>) -> Result<(), CallError> {
    if timeout_secs.is_some_and(|t| !(5..=600).contains(&t)) {
        return Err(CallError::invalid("10002", "timeout_secs must be 5-600", "/timeout_secs"));
    }
    if time_limit_secs.is_some_and(|t| !(1..=14_400).contains(&t)) {
        return Err(CallError::invalid("10002", "time_limit_secs must be 1-14400", "/time_limit_secs"));
    }
    Ok(())
}

pub(super) fn no_route(detail: &str) -> CallError {
    CallError::invalid("10002", detail, "/to")
}
