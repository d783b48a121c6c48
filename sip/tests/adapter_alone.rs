//! The SIP adapter on its own: a real SIP stack and media engine on loopback,
//! call control replaced by a recorder of what the adapter reports through
//! `CallControl`, and a caller speaking SIP over a plain UDP socket. Shows the
//! trait is the whole interface: no call service, database or webhooks here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::runtime::{self, EngineHandle, PortRange, RuntimeConfig};
use bond_sip::media::{self, CallMedia};
use bond_sip::{
    CallControl, Destination, ExtraHeader, IncomingCall, IncomingRefused, Outgoing, ReferProgress,
    ReferRefusal, SipCalls, SipConfig,
};
use bond_store::db::DbError;
use bond_store::{CallId, Connection, Ending};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// What the adapter told call control.
#[derive(Debug)]
enum Report {
    Incoming(IncomingCall),
    Answered(CallId, Codec),
    Ended(CallId, Ending),
    Referred(CallId, String),
}

/// Call control replaced by a recorder, with one connection allowing loopback.
#[derive(Clone)]
struct Recorder {
    connection: Connection,
    reports: mpsc::UnboundedSender<Report>,
}

impl CallControl for Recorder {
    async fn sip_connections(&self) -> Result<Vec<Connection>, DbError> {
        Ok(vec![self.connection.clone()])
    }

    async fn incoming(
        &self,
        _: &Connection,
        call: IncomingCall,
        _: Option<usize>,
    ) -> Result<(), IncomingRefused> {
        let _ = self.reports.send(Report::Incoming(call));
        Ok(())
    }

    async fn answered(&self, call: &CallId, codec: Codec) -> Result<(), DbError> {
        let _ = self.reports.send(Report::Answered(call.clone(), codec));
        Ok(())
    }

    async fn early_media(&self, _: &CallId) {}

    async fn ended(&self, call: &CallId, ending: Ending) {
        // The real call control awaits its store first; a task cancelled
        // meanwhile never reports.
        tokio::task::yield_now().await;
        let _ = self.reports.send(Report::Ended(call.clone(), ending));
    }

    /// Goes ahead unless the target is `sip:nobody@...`.
    async fn referred(&self, call: &CallId, target: String) -> Result<(), ReferRefusal> {
        let refused = target.starts_with("sip:nobody@");
        let _ = self.reports.send(Report::Referred(call.clone(), target));
        if refused {
            return Err(ReferRefusal::new(403, "not that one"));
        }
        Ok(())
    }

    async fn refer_progress(&self, _: &CallId, _: ReferProgress) {}
}

fn connection(allowed: &str) -> Connection {
    let settings = serde_json::json!({ "bond": { "sip": { "allowed_ips": [allowed] } } });
    Connection {
        id: "conn-1".into(),
        record_type: "call_control_application",
        organization_id: "org-1".into(),
        application_name: "adapter test".into(),
        webhook_event_url: "http://127.0.0.1:9/hooks".into(),
        webhook_event_failover_url: None,
        webhook_timeout_secs: None,
        webhook_api_version: "2",
        active: true,
        settings: settings.as_object().unwrap().clone(),
        created_at: String::new(),
        updated_at: String::new(),
    }
}

struct Bond {
    recorder: Recorder,
    sip: SipCalls,
    engine: EngineHandle,
    addr: SocketAddr,
    reports: mpsc::UnboundedReceiver<Report>,
}

/// The shipped SIP configuration, on loopback ports of the system's choosing
/// (tests run side by side), with a recorder for call control.
async fn start(allowed: &str, first_rtp_port: u16) -> Bond {
    start_with(allowed, first_rtp_port, SipConfig::default()).await
}

/// `start` with another configuration (its listen addresses still loopback).
async fn start_with(allowed: &str, first_rtp_port: u16, config: SipConfig) -> Bond {
    let (engine, _) = runtime::spawn(RuntimeConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        rtp_ports: PortRange::new(first_rtp_port, first_rtp_port + 98).unwrap(),
        seed: 7,
        webrtc: None,
        opus: Default::default(),
        shards: 1,
        passthrough: true,
        rtcp: true,
        driver_threads: false,
        strict_source: true,
        kernel_relay: false,
    });
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = SipConfig { udp_listen: loopback, tcp_listen: loopback, ..config };
    let (tx, reports) = mpsc::unbounded_channel();
    let recorder = Recorder { connection: connection(allowed), reports: tx };
    let sip = SipCalls::default();
    let tls = bond_sip::SipTls::default();
    let stack = bond_sip::start(&config, None, engine.clone(), tls, sip.clone(), recorder.clone(), None)
        .await
        .unwrap();
    Bond { recorder, sip, engine, addr: stack.udp_addr, reports }
}

/// A caller: one UDP socket and one dialog's worth of headers.
struct Caller {
    socket: UdpSocket,
    bond: SocketAddr,
    call_id: String,
    branch: u32,
}

impl Caller {
    async fn new(bond: SocketAddr, call_id: &str) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Self { socket, bond, call_id: call_id.into(), branch: 0 }
    }

    async fn send(&mut self, method: &str, cseq: u32, to_tag: Option<&str>, body: &str) {
        self.send_with(method, cseq, to_tag, "", body).await;
    }

    /// `send`, with `headers` (each ending in CRLF) added.
    async fn send_with(&mut self, method: &str, cseq: u32, to_tag: Option<&str>, headers: &str, body: &str) {
        self.branch += 1;
        let me = self.socket.local_addr().unwrap();
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let content_type = if body.is_empty() { "" } else { "Content-Type: application/sdp\r\n" };
        let message = format!(
            "{method} sip:+15557654321@{bond} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-{call}-{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Alice\" <sip:+15551230000@{me}>;tag=caller\r\n\
             To: <sip:+15557654321@{bond}>{to_tag}\r\n\
             Call-ID: {call}\r\n\
             CSeq: {cseq} {method}\r\n\
             Contact: <sip:+15551230000@{me}>\r\n\
             {headers}{content_type}Content-Length: {len}\r\n\r\n{body}",
            bond = self.bond,
            call = self.call_id,
            branch = self.branch,
            len = body.len(),
        );
        self.socket.send_to(message.as_bytes(), self.bond).await.unwrap();
    }

    /// The next final (or provisional, if `status` is 1xx) response with `status`.
    async fn expect(&self, status: u16) -> String {
        let mut buf = vec![0u8; 8192];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), self.socket.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no {status} from Bond"))
                .unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let code: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            if code == status {
                return text;
            }
            assert!(code < 200 || code == status, "expected {status}, got:\n{text}");
        }
    }
}

impl Caller {
    /// The next request Bond sends (`method`), answered `200 OK`.
    async fn answer_request(&self, method: &str) -> String {
        let mut buf = vec![0u8; 8192];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), self.socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {method} from Bond"))
            .unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(request.starts_with(&format!("{method} ")), "expected {method}, got:\n{request}");
        let header = |name: &str| {
            let prefix = format!("{name}:");
            let lines = request.lines().filter(|l| l.to_ascii_lowercase().starts_with(&prefix));
            lines.collect::<Vec<_>>().join("\r\n")
        };
        let response = format!(
            "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{}\r\n{}\r\n{}\r\nContent-Length: 0\r\n\r\n",
            header("via"),
            header("from"),
            header("to"),
            header("call-id"),
            header("cseq"),
        );
        self.socket.send_to(response.as_bytes(), from).await.unwrap();
        request
    }
}

fn offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

fn to_tag(response: &str) -> String {
    let to = response.lines().find(|l| l.to_ascii_lowercase().starts_with("to:")).unwrap();
    to.split(";tag=").nth(1).unwrap().trim().to_owned()
}

async fn next_report(bond: &mut Bond) -> Report {
    tokio::time::timeout(Duration::from_secs(5), bond.reports.recv()).await.expect("a report").unwrap()
}

#[tokio::test]
async fn an_invite_is_reported_answered_through_sip_calls_and_its_bye_reported_as_the_end() {
    let mut bond = start("127.0.0.1", 43000).await;
    let mut caller = Caller::new(bond.addr, "adapter-answer").await;
    caller.send("INVITE", 1, None, &offer(40000)).await;
    caller.expect(180).await;
    let Report::Incoming(call) = next_report(&mut bond).await else { panic!("not an incoming call") };
    assert_eq!((call.from.as_str(), call.to.as_str()), ("+15551230000", "+15557654321"));
    assert_eq!(call.from_display_name.as_deref(), Some("Alice"));
    assert!(call.offered_codecs.starts_with("PCMU"), "{}", call.offered_codecs);
    assert!(bond.sip.is_waiting(&call.call_control_id));

    let codec = bond.sip.answer(&call.call_control_id, &bond.engine).await.unwrap();
    assert_eq!(codec, Codec::Pcmu);
    let ok = caller.expect(200).await;
    assert!(ok.contains("m=audio "), "200 without SDP:\n{ok}");
    let tag = to_tag(&ok);
    caller.send("ACK", 1, Some(&tag), "").await;
    assert!(!bond.sip.is_waiting(&call.call_control_id));

    caller.send("BYE", 2, Some(&tag), "").await;
    caller.expect(200).await;
    let Report::Ended(ended, ending) = next_report(&mut bond).await else { panic!("not an ending") };
    assert_eq!(ended, call.call_control_id);
    assert_eq!(ending, Ending { cause: "normal_clearing", source: "caller" });
    assert!(bond.sip.get(&call.call_control_id).is_none(), "the dialog is forgotten");
}

#[tokio::test]
async fn a_rejected_call_gets_its_status_and_is_not_reported_back_as_ended() {
    let mut bond = start("127.0.0.1", 43100).await;
    let mut caller = Caller::new(bond.addr, "adapter-reject").await;
    caller.send("INVITE", 1, None, &offer(40002)).await;
    let Report::Incoming(call) = next_report(&mut bond).await else { panic!("not an incoming call") };
    assert!(bond.sip.reject(&call.call_control_id, 486));
    caller.expect(486).await;
    assert!(!bond.sip.reject(&call.call_control_id, 486), "only a waiting call can be rejected");
    // Call control ends a call it rejected itself; the adapter does not report it.
    let more = tokio::time::timeout(Duration::from_millis(300), bond.reports.recv()).await;
    assert!(more.is_err(), "unexpected report: {more:?}");
}

#[tokio::test]
async fn an_invite_from_an_address_no_connection_allows_never_reaches_call_control() {
    let mut bond = start("192.0.2.10", 43200).await;
    let mut caller = Caller::new(bond.addr, "adapter-refused").await;
    caller.send("INVITE", 1, None, &offer(40004)).await;
    caller.expect(403).await;
    let more = tokio::time::timeout(Duration::from_millis(300), bond.reports.recv()).await;
    assert!(more.is_err(), "unexpected report: {more:?}");
}

#[tokio::test]
async fn a_call_left_ringing_gets_480_at_the_ring_timeout_and_is_reported_ended() {
    let config = SipConfig { ring_timeout_secs: 1, ..SipConfig::default() };
    let mut bond = start_with("127.0.0.1", 43600, config).await;
    let mut caller = Caller::new(bond.addr, "adapter-ring-timeout").await;
    caller.send("INVITE", 1, None, &offer(40010)).await;
    let Report::Incoming(call) = next_report(&mut bond).await else { panic!("not an incoming call") };
    caller.expect(480).await;
    let Report::Ended(ended, ending) = next_report(&mut bond).await else { panic!("not an ending") };
    assert_eq!(ended, call.call_control_id);
    assert_eq!(ending.cause, "timeout");
    assert!(bond.sip.get(&call.call_control_id).is_none(), "the call is forgotten");
}

#[tokio::test]
async fn an_answered_call_outlives_its_ring_timeout() {
    let config = SipConfig { ring_timeout_secs: 1, ..SipConfig::default() };
    let mut bond = start_with("127.0.0.1", 43700, config).await;
    let mut caller = Caller::new(bond.addr, "adapter-ring-answered").await;
    let (id, _) = answered_call(&mut bond, &mut caller, 40012).await;
    assert!(bond.sip.get(&id).is_some_and(|c| c.ring_timer.is_none()), "its ring timer is stopped");
    let more = tokio::time::timeout(Duration::from_millis(1500), bond.reports.recv()).await;
    assert!(more.is_err(), "unexpected report: {more:?}");
    assert!(bond.sip.get(&id).is_some_and(|c| c.answered));
}

/// A callee on a plain UDP socket: answers the INVITE it receives with 200
/// and an SDP answer for PCMU; returns the INVITE.
async fn answer_one_invite(callee: &UdpSocket) -> String {
    let mut buf = vec![0u8; 8192];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), callee.recv_from(&mut buf))
        .await
        .expect("an INVITE")
        .unwrap();
    let invite = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(invite.starts_with("INVITE sip:bob@"), "{invite}");
    let header = |name: &str| {
        invite
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in\n{invite}"))
            .to_owned()
    };
    let me = callee.local_addr().unwrap();
    let body = offer(40006);
    let response = format!(
        "SIP/2.0 200 OK\r\n{}\r\n{}\r\n{};tag=callee\r\n{}\r\n{}\r\n\
         Contact: <sip:bob@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        header("via"),
        header("from"),
        header("to"),
        header("call-id"),
        header("cseq"),
        body.len(),
    );
    callee.send_to(response.as_bytes(), from).await.unwrap();
    invite
}

#[tokio::test]
async fn a_dialed_call_that_is_answered_is_reported_with_its_codec() {
    let mut bond = start("127.0.0.1", 43300).await;
    let callee = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let codecs = vec![Codec::Pcmu];
    let (leg, port) =
        media::open_leg(&bond.engine, media::offer_rtp_media(&codecs, Default::default()), None, None)
            .await
            .unwrap();
    let id = CallId::generate();
    let outgoing = Outgoing {
        call_control_id: id.clone(),
        connection_id: "conn-1".into(),
        destination: Destination::uri(&format!("sip:bob@{}", callee.local_addr().unwrap()), None),
        from: "+15551230000".into(),
        from_display_name: None,
        media: CallMedia {
            leg,
            local: media::offer_media(&codecs, IpAddr::V4(Ipv4Addr::LOCALHOST), port, Default::default()),
            plan: None,
        },
        codecs,
        ring: Duration::from_secs(5),
        headers: vec![ExtraHeader::checked("X-Campaign", "spring-42").unwrap()],
    };
    bond.sip.dial(bond.recorder.clone(), outgoing).unwrap();
    let invite = answer_one_invite(&callee).await;
    assert!(invite.contains("X-Campaign: spring-42\r\n"), "the application's header:\n{invite}");
    let Report::Answered(answered, codec) = next_report(&mut bond).await else { panic!("not an answer") };
    assert_eq!((answered, codec), (id.clone(), Codec::Pcmu));
    assert!(bond.sip.get(&id).is_some_and(|c| c.answered && !c.incoming));
}

/// An answered call from `caller`: its id and Bond's tag.
async fn answered_call(bond: &mut Bond, caller: &mut Caller, rtp_port: u16) -> (CallId, String) {
    caller.send("INVITE", 1, None, &offer(rtp_port)).await;
    let Report::Incoming(call) = next_report(bond).await else { panic!("not an incoming call") };
    bond.sip.answer(&call.call_control_id, &bond.engine).await.unwrap();
    let tag = to_tag(&caller.expect(200).await);
    caller.send("ACK", 1, Some(&tag), "").await;
    (call.call_control_id, tag)
}

#[tokio::test]
async fn a_peers_refer_is_accepted_and_its_outcome_notified_after_trying() {
    let mut bond = start("127.0.0.1", 43400).await;
    let mut caller = Caller::new(bond.addr, "adapter-refer").await;
    let (id, tag) = answered_call(&mut bond, &mut caller, 40008).await;

    let refer_to = "Refer-To: <sip:+15559990000@trunk.example.net>\r\n";
    caller.send_with("REFER", 2, Some(&tag), refer_to, "").await;
    caller.expect(202).await;
    let Report::Referred(referred, target) = next_report(&mut bond).await else { panic!("not a refer") };
    assert_eq!((referred, target.as_str()), (id.clone(), "sip:+15559990000@trunk.example.net"));
    let trying = caller.answer_request("NOTIFY").await;
    assert!(trying.contains("SIP/2.0 100 Trying"), "{trying}");
    assert!(trying.to_ascii_lowercase().contains("subscription-state: active"), "{trying}");

    let sip = bond.sip.clone();
    let outcome = tokio::spawn(async move { sip.notify_refer(&id, 200).await });
    let done = caller.answer_request("NOTIFY").await;
    assert!(done.contains("SIP/2.0 200 OK"), "{done}");
    assert!(done.to_ascii_lowercase().contains("subscription-state: terminated"), "{done}");
    outcome.await.unwrap();
}

#[tokio::test]
async fn a_refer_call_control_declines_or_bond_cannot_do_gets_its_status() {
    let mut bond = start("127.0.0.1", 43500).await;
    let mut caller = Caller::new(bond.addr, "adapter-refer-no").await;
    let (_, tag) = answered_call(&mut bond, &mut caller, 40010).await;
    caller.send_with("REFER", 2, Some(&tag), "Refer-To: <sip:nobody@example.net>\r\n", "").await;
    caller.expect(403).await;
    let replaces = "Refer-To: <sip:+15559990000@pbx?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n";
    caller.send_with("REFER", 3, Some(&tag), replaces, "").await;
    caller.expect(501).await;
    caller.send_with("REFER", 4, Some(&tag), "", "").await;
    caller.expect(400).await;
}
