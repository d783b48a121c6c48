//! The agent-signalling adapter on its own: a real media engine on loopback,
//! call control replaced by a recorder of what the adapter asks through
//! `AgentControl`, and a browser's frames handed in as the socket would.
//! Shows the trait is the whole interface: no call service, database,
//! webhooks or HTTP here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bond_agents::{AgentControl, AgentMessage, AgentSession, Agents, SignedIn};
use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::Codec;
use bond_media_engine::runtime::{self, EngineHandle, PortRange, RuntimeConfig, WebRtcPort};
use bond_media_engine::LegId;
use bond_store::clock::monotonic;
use bond_store::{CallId, Connection, Ending};
use serde_json::json;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tokio::sync::mpsc;

/// What the adapter asked of call control.
#[derive(Debug, PartialEq)]
enum Report {
    Accepted(CallId, Codec),
    Placed { call: CallId, connection: String, from: String, to: String, codec: Codec },
    Ended(CallId, Ending),
    Mute(CallId, bool),
    Hold(CallId, bool),
    Digits(CallId, Vec<DtmfDigit>),
    AvailabilityChanged(String),
    Candidate(CallId),
}

/// Call control replaced by a recorder, with one active connection (`conn-1`).
#[derive(Clone)]
struct Recorder {
    agents: Agents,
    engine: EngineHandle,
    reports: mpsc::UnboundedSender<Report>,
    /// The leg each accepted call got, as call control would keep it.
    legs: Arc<Mutex<HashMap<CallId, LegId>>>,
}

impl Recorder {
    fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}

impl AgentControl for Recorder {
    fn agents(&self) -> &Agents {
        &self.agents
    }

    fn engine_for(&self, _: &CallId) -> EngineHandle {
        self.engine.clone()
    }

    async fn accepted(&self, call: &CallId, leg: LegId, codec: Codec) -> Result<(), String> {
        self.legs.lock().unwrap().insert(call.clone(), leg);
        self.report(Report::Accepted(call.clone(), codec));
        Ok(())
    }

    async fn connection(&self, organization_id: &str, connection_id: &str) -> Result<Connection, String> {
        if connection_id == "conn-1" {
            Ok(connection(organization_id))
        } else {
            Err(format!("connection {connection_id} is missing or not active"))
        }
    }

    async fn placed(
        &self,
        connection: &Connection,
        call: &CallId,
        from: String,
        to: String,
        _: LegId,
        codec: Codec,
    ) -> Result<(), String> {
        let connection = connection.id.clone();
        self.report(Report::Placed { call: call.clone(), connection, from, to, codec });
        Ok(())
    }

    async fn availability_changed(&self, organization_id: &str) {
        self.report(Report::AvailabilityChanged(organization_id.into()));
    }

    async fn ended(&self, call: &CallId, ending: Ending) {
        self.report(Report::Ended(call.clone(), ending));
    }

    async fn add_ice_candidate(&self, call: &CallId, candidate: String) -> Result<(), String> {
        let leg = self.legs.lock().unwrap().get(call).copied().ok_or("no leg yet")?;
        self.engine.add_ice_candidate(leg, candidate).await.map_err(|e| e.to_string())?;
        self.report(Report::Candidate(call.clone()));
        Ok(())
    }

    async fn mute(&self, _: &str, call: &CallId, muted: bool) -> Result<(), String> {
        self.report(Report::Mute(call.clone(), muted));
        Ok(())
    }

    async fn hold(&self, _: &str, call: &CallId, held: bool) -> Result<(), String> {
        self.report(Report::Hold(call.clone(), held));
        Ok(())
    }

    async fn digits_to_partner(&self, _: &str, call: &CallId, digits: Vec<DtmfDigit>) -> Result<(), String> {
        self.report(Report::Digits(call.clone(), digits));
        Ok(())
    }
}

fn connection(organization_id: &str) -> Connection {
    Connection {
        id: "conn-1".into(),
        record_type: "call_control_application",
        organization_id: organization_id.into(),
        application_name: "adapter test".into(),
        webhook_event_url: "http://127.0.0.1:9/hooks".into(),
        webhook_event_failover_url: None,
        webhook_timeout_secs: None,
        webhook_api_version: "2",
        active: true,
        settings: serde_json::Map::new(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

struct Bond {
    control: Recorder,
    reports: mpsc::UnboundedReceiver<Report>,
}

impl Bond {
    /// A media engine with a WebRTC port on loopback, and a recorder for call control.
    async fn start(first_rtp_port: u16) -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let webrtc = WebRtcPort {
            socket: Arc::new(socket),
            public_ip: None,
            tcp: None,
            codecs: vec![Codec::Opus, Codec::Pcmu],
        };
        let (engine, _) = runtime::spawn(RuntimeConfig {
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_ports: PortRange::new(first_rtp_port, first_rtp_port + 98).unwrap(),
            seed: 7,
            webrtc: Some(webrtc),
            opus: Default::default(),
            shards: 1,
            passthrough: true,
            rtcp: true,
            driver_threads: false,
            strict_source: true,
            kernel_relay: false,
        });
        let (tx, reports) = mpsc::unbounded_channel();
        let legs = Arc::default();
        Self { control: Recorder { agents: Agents::default(), engine, reports: tx, legs }, reports }
    }

    async fn frame(&self, who: &SignedIn, frame: serde_json::Value) -> Option<AgentMessage> {
        bond_agents::handle(&self.control, who, &frame.to_string()).await
    }

    fn reported(&mut self) -> Option<Report> {
        self.reports.try_recv().ok()
    }
}

fn agent(name: &str, connection_id: Option<&str>) -> SignedIn {
    SignedIn {
        organization_id: "org-1".into(),
        agent: name.into(),
        connection_id: connection_id.map(Into::into),
    }
}

/// A browser's offer: Opus audio, one host candidate.
fn browser_offer() -> String {
    #[allow(clippy::disallowed_methods)] // str0m's own clock for a throwaway peer
    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host("127.0.0.1:50000".parse().unwrap(), "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, _) = change.apply().unwrap();
    offer.to_sdp_string()
}

/// Ring `who` with a new call; the browser is told of it.
fn ring(bond: &Bond, who: &SignedIn, session: &mut AgentSession) -> CallId {
    let call = CallId::generate();
    bond.control.agents.ring(&who.organization_id, &who.agent, &call, "+15551230000", "agent:alice");
    let told = session.messages.try_recv().unwrap();
    let expected = AgentMessage::IncomingCall {
        call_control_id: call.clone(),
        from: "+15551230000".into(),
        to: "agent:alice".into(),
    };
    assert_eq!(told, expected);
    call
}

#[tokio::test]
async fn an_agent_accepting_a_ringing_call_gets_an_answer_and_call_control_the_leg() {
    let mut bond = Bond::start(46000).await;
    let alice = agent("alice", None);
    let mut session = bond.control.agents.register(&alice, monotonic());
    let call = ring(&bond, &alice, &mut session);
    assert!(bond.control.agents.is_ringing(&call));

    let reply =
        bond.frame(&alice, json!({"type": "accept", "call_control_id": call, "sdp": browser_offer()})).await;
    let Some(AgentMessage::Answer { call_control_id, sdp }) = reply else { panic!("{reply:?}") };
    assert_eq!(call_control_id, call);
    assert!(sdp.starts_with("v=0") && sdp.contains("opus/48000"), "{sdp}");
    assert_eq!(bond.reported(), Some(Report::Accepted(call.clone(), Codec::Opus)));
    assert!(!bond.control.agents.is_ringing(&call));

    // A second accept, or another agent's, is refused and reaches no call control.
    let again =
        bond.frame(&alice, json!({"type": "accept", "call_control_id": call, "sdp": browser_offer()})).await;
    assert!(
        matches!(again, Some(AgentMessage::Error { ref code, .. }) if code == "accept_failed"),
        "{again:?}"
    );
    let bob = agent("bob", None);
    let _bob_session = bond.control.agents.register(&bob, monotonic());
    let stolen =
        bond.frame(&bob, json!({"type": "accept", "call_control_id": call, "sdp": browser_offer()})).await;
    let detail = format!("no call {call} on this agent");
    assert_eq!(stolen, Some(AgentMessage::error("accept_failed", detail)));
    assert_eq!(bond.reported(), None);
}

#[tokio::test]
async fn a_bad_offer_leaves_the_call_ringing_for_a_better_one() {
    let mut bond = Bond::start(46100).await;
    let alice = agent("alice", None);
    let mut session = bond.control.agents.register(&alice, monotonic());
    let call = ring(&bond, &alice, &mut session);
    let refused =
        bond.frame(&alice, json!({"type": "accept", "call_control_id": call, "sdp": "v=0\r\n"})).await;
    assert!(
        matches!(refused, Some(AgentMessage::Error { ref code, .. }) if code == "accept_failed"),
        "{refused:?}"
    );
    assert!(bond.control.agents.is_ringing(&call));
    assert_eq!(bond.reported(), None);
}

#[tokio::test]
async fn rejecting_and_hanging_up_end_calls_with_telnyx_causes_and_sources() {
    let mut bond = Bond::start(46200).await;
    let alice = agent("alice", Some("conn-1"));
    let mut session = bond.control.agents.register(&alice, monotonic());

    let rejected = ring(&bond, &alice, &mut session);
    assert_eq!(bond.frame(&alice, json!({"type": "reject", "call_control_id": rejected})).await, None);
    let ending = Ending { cause: "call_rejected", source: "callee" };
    assert_eq!(bond.reported(), Some(Report::Ended(rejected, ending)));

    let answered = ring(&bond, &alice, &mut session);
    bond.frame(&alice, json!({"type": "accept", "call_control_id": answered, "sdp": browser_offer()})).await;
    bond.reported();
    assert_eq!(bond.frame(&alice, json!({"type": "hangup", "call_control_id": answered})).await, None);
    let ending = Ending { cause: "normal_clearing", source: "callee" };
    assert_eq!(bond.reported(), Some(Report::Ended(answered, ending)));

    let placed =
        bond.frame(&alice, json!({"type": "call", "sdp": browser_offer(), "to": "+15557654321"})).await;
    let Some(AgentMessage::Outgoing { call_control_id: placed, .. }) = placed else { panic!("{placed:?}") };
    bond.reported();
    bond.frame(&alice, json!({"type": "hangup", "call_control_id": placed})).await;
    let ending = Ending { cause: "normal_clearing", source: "caller" };
    assert_eq!(bond.reported(), Some(Report::Ended(placed, ending)));
}

#[tokio::test]
async fn placing_a_call_makes_the_agents_own_leg_on_its_tokens_connection() {
    let mut bond = Bond::start(46300).await;
    let alice = agent("alice", Some("conn-1"));
    let mut session = bond.control.agents.register(&alice, monotonic());
    let reply =
        bond.frame(&alice, json!({"type": "call", "sdp": browser_offer(), "to": "+15557654321"})).await;
    let Some(AgentMessage::Outgoing { call_control_id: call, sdp }) = reply else { panic!("{reply:?}") };
    assert!(sdp.starts_with("v=0"), "{sdp}");
    let placed = Report::Placed {
        call: call.clone(),
        connection: "conn-1".into(),
        from: "agent:alice".into(),
        to: "+15557654321".into(),
        codec: Codec::Opus,
    };
    assert_eq!(bond.reported(), Some(placed));
    assert!(bond.control.agents.is_placed(&call));

    // The call it places is answered: the browser hears, and again when it ends.
    bond.control.agents.placed_call_answered(&call);
    let answered = AgentMessage::Answered { call_control_id: call.clone() };
    assert_eq!(session.messages.try_recv().unwrap(), answered);
    bond.control.agents.released(&call, "normal_clearing", monotonic());
    let hangup = AgentMessage::Hangup { call_control_id: call.clone(), cause: "normal_clearing".into() };
    assert_eq!(session.messages.try_recv().unwrap(), hangup);
    assert!(!bond.control.agents.is_placed(&call));
}

#[tokio::test]
async fn placing_a_call_needs_a_connection_on_the_token_and_an_active_one() {
    let mut bond = Bond::start(46400).await;
    for (who, detail) in [
        (agent("alice", None), "this agent's token names no connection to place calls on"),
        (agent("alice", Some("conn-9")), "connection conn-9 is missing or not active"),
    ] {
        let reply = bond.frame(&who, json!({"type": "call", "sdp": browser_offer()})).await;
        assert_eq!(reply, Some(AgentMessage::error("call_failed", detail)));
    }
    assert_eq!(bond.reported(), None);
}

#[tokio::test]
async fn mute_hold_and_digits_reach_call_control_only_for_the_agents_own_calls() {
    let mut bond = Bond::start(46500).await;
    let alice = agent("alice", None);
    let mut session = bond.control.agents.register(&alice, monotonic());
    let call = ring(&bond, &alice, &mut session);
    bond.frame(&alice, json!({"type": "accept", "call_control_id": call, "sdp": browser_offer()})).await;
    bond.reported();

    assert_eq!(
        bond.frame(&alice, json!({"type": "mute", "call_control_id": call, "muted": true})).await,
        None
    );
    assert_eq!(bond.reported(), Some(Report::Mute(call.clone(), true)));
    assert_eq!(
        bond.frame(&alice, json!({"type": "hold", "call_control_id": call, "held": false})).await,
        None
    );
    assert_eq!(bond.reported(), Some(Report::Hold(call.clone(), false)));
    assert_eq!(
        bond.frame(&alice, json!({"type": "dtmf", "call_control_id": call, "digits": "1#"})).await,
        None
    );
    let pressed = vec![DtmfDigit::from_char('1').unwrap(), DtmfDigit::from_char('#').unwrap()];
    assert_eq!(bond.reported(), Some(Report::Digits(call.clone(), pressed)));

    let bob = agent("bob", None);
    let not_bobs = bond.frame(&bob, json!({"type": "mute", "call_control_id": call, "muted": true})).await;
    assert_eq!(
        not_bobs,
        Some(AgentMessage::error("request_failed", format!("no call {call} on this agent")))
    );
    for digits in ["", "12x", &"1".repeat(33)] {
        let bad =
            bond.frame(&alice, json!({"type": "dtmf", "call_control_id": call, "digits": digits})).await;
        assert!(
            matches!(bad, Some(AgentMessage::Error { ref code, .. }) if code == "request_failed"),
            "{bad:?}"
        );
    }
    assert_eq!(bond.reported(), None);
}

#[tokio::test]
async fn candidates_trickled_after_the_offer_reach_the_agents_own_leg_and_bad_ones_are_refused() {
    let mut bond = Bond::start(46900).await;
    let alice = agent("alice", None);
    let mut session = bond.control.agents.register(&alice, monotonic());
    let call = ring(&bond, &alice, &mut session);
    let host = "candidate:1 1 udp 2122260223 127.0.0.1 50002 typ host generation 0 network-id 1";
    let candidate =
        |call: &CallId, line: &str| json!({"type": "candidate", "call_control_id": call, "candidate": line});

    // Ringing, not yet accepted: there is no leg to give it to.
    let early = bond.frame(&alice, candidate(&call, host)).await;
    assert_eq!(early, Some(AgentMessage::error("candidate_refused", "no leg yet")));

    bond.frame(&alice, json!({"type": "accept", "call_control_id": call, "sdp": browser_offer()})).await;
    bond.reported();
    assert_eq!(bond.frame(&alice, candidate(&call, host)).await, None);
    assert_eq!(bond.reported(), Some(Report::Candidate(call.clone())));

    // What is no candidate, and another agent's call, are refused; the call goes on.
    let garbage = bond.frame(&alice, candidate(&call, "candidate:x")).await;
    assert!(
        matches!(garbage, Some(AgentMessage::Error { ref code, ref detail }) if code == "candidate_refused" && detail.contains("candidate")),
        "{garbage:?}"
    );
    let bob = agent("bob", None);
    let not_bobs = bond.frame(&bob, candidate(&call, host)).await;
    assert_eq!(
        not_bobs,
        Some(AgentMessage::error("candidate_refused", format!("no call {call} on this agent")))
    );
    assert_eq!(bond.reported(), None);
    let mdns = "candidate:2 1 udp 2122260223 0b4c2f1e-2c55.local 50003 typ host";
    assert!(bond.frame(&alice, candidate(&call, mdns)).await.is_some());
    assert_eq!(bond.frame(&alice, candidate(&call, &format!("a={host}"))).await, None);
    assert_eq!(bond.reported(), Some(Report::Candidate(call.clone())));
}

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_session_goes_on() {
    let mut bond = Bond::start(46600).await;
    let alice = agent("alice", None);
    let _session = bond.control.agents.register(&alice, monotonic());
    for text in ["", "{", "[]", r#"{"type":"dance"}"#, r#"{"type":"mute","call_control_id":"x"}"#, "\u{0}"] {
        let reply = bond_agents::handle(&bond.control, &alice, text).await;
        assert!(
            matches!(reply, Some(AgentMessage::Error { ref code, .. }) if code == "malformed_message"),
            "{text}"
        );
    }
    let again = bond.frame(&alice, json!({"type": "register", "token": "t"})).await;
    assert_eq!(again, Some(AgentMessage::error("request_failed", "already registered")));
    assert_eq!(bond.frame(&alice, json!({"type": "ping"})).await, Some(AgentMessage::Pong));
    assert_eq!(bond.reported(), None);
}

#[tokio::test]
async fn signing_out_ends_the_agents_calls_unless_a_newer_session_took_over() {
    let mut bond = Bond::start(46700).await;
    let alice = agent("alice", None);
    let first = bond.control.agents.register(&alice, monotonic());
    let mut second = bond.control.agents.register(&alice, monotonic());
    let call = ring(&bond, &alice, &mut second);

    // The first session was replaced: its closing ends nothing.
    bond_agents::signed_out(&bond.control, &alice, first.id).await;
    assert_eq!(bond.reported(), None);
    assert!(bond.control.agents.is_registered("org-1", "alice"));

    bond_agents::signed_out(&bond.control, &alice, second.id).await;
    let ending = Ending { cause: "no_answer", source: "callee" };
    assert_eq!(bond.reported(), Some(Report::Ended(call, ending)));
    assert!(!bond.control.agents.is_registered("org-1", "alice"));
}

#[tokio::test]
async fn an_available_agent_is_idle_for_queues_until_a_call_rings_and_free_again_when_it_ends() {
    let mut bond = Bond::start(46800).await;
    let alice = agent("alice", None);
    let t0 = monotonic();
    let mut session = bond.control.agents.register(&alice, t0);
    assert!(bond.control.agents.idle("org-1", t0).is_empty(), "a new session starts unavailable");

    assert_eq!(bond.frame(&alice, json!({"type": "availability", "available": true})).await, None);
    assert_eq!(session.messages.try_recv().unwrap(), AgentMessage::Availability { available: true });
    assert_eq!(bond.reported(), Some(Report::AvailabilityChanged("org-1".into())));
    assert_eq!(
        bond.control.agents.idle("org-1", t0).iter().map(|i| i.agent.as_str()).collect::<Vec<_>>(),
        ["alice"]
    );
    assert!(bond.control.agents.idle("org-2", t0).is_empty(), "agents are their organization's");

    let call = ring(&bond, &alice, &mut session);
    assert!(bond.control.agents.idle("org-1", t0).is_empty(), "ringing");
    let ended = t0 + std::time::Duration::from_secs(60);
    bond.control.agents.released(&call, "normal_clearing", ended);
    session.messages.try_recv().unwrap();
    let idle = bond.control.agents.idle("org-1", ended);
    assert_eq!((idle.len(), idle[0].since), (1, ended), "free since its call ended");

    // Bond takes it out after a missed offer; the browser hears of it.
    assert!(bond.control.agents.set_available("org-1", "alice", false, ended));
    assert_eq!(session.messages.try_recv().unwrap(), AgentMessage::Availability { available: false });
    assert!(bond.control.agents.idle("org-1", ended).is_empty());
}
