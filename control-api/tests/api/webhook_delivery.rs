//! Webhooks from a running Bond to a receiver over real HTTP: Telnyx's envelope,
//! Ed25519 signatures over `timestamp|body`, per-call order, failover, and durable
//! delivery across a receiver outage and a restart of Bond.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::ADMIN_KEY;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use bond::serve::{self, Running};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{json, Value};

/// What a receiver got: (timestamp header, signature header, raw body).
type Received = Arc<Mutex<Vec<(String, String, String)>>>;

/// An HTTP receiver on `addr` (port 0 for any) answering `status`.
async fn receiver(
    addr: SocketAddr,
    status: StatusCode,
) -> (SocketAddr, Received, tokio::task::JoinHandle<()>) {
    let got: Received = Arc::default();
    let app =
        Router::new()
            .route(
                "/hooks",
                post(
                    |State((got, status)): State<(Received, StatusCode)>,
                     headers: HeaderMap,
                     body: String| async move {
                        let h = |name: &str| {
                            headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
                        };
                        got.lock().unwrap().push((
                            h("telnyx-timestamp"),
                            h("telnyx-signature-ed25519"),
                            body,
                        ));
                        status
                    },
                ),
            )
            .with_state((got.clone(), status));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, got, task)
}

/// A port that refuses connections and that nothing else can take while the
/// socket lives (bound, never listening). A port picked by binding a listener
/// and dropping it may be handed to another test running beside this one.
fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

async fn start_bond(dir: &std::path::Path, url: &str) -> Running {
    let config = crate::common::config(
        dir,
        url,
        &[
            ("BOND_HTTP_LISTEN", "127.0.0.1:0"),
            ("BOND_SIP_UDP_LISTEN", "127.0.0.1:0"),
            ("BOND_WEBRTC_LISTEN", "127.0.0.1:0"),
            ("BOND_SIP_TCP_LISTEN", "127.0.0.1:0"),
            ("BOND_WEBHOOKS_RETRY_INITIAL_MS", "50"),
            ("BOND_WEBHOOKS_RETRY_MAX_MS", "200"),
        ],
    );
    serve::start(&config).await.unwrap()
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(bond: &Running) -> Self {
        Self { base: format!("http://{}", bond.http_addr), client: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn connection(&self, url: &str, failover: Option<&str>) -> String {
        let body = json!({ "application_name": "hooks", "webhook_event_url": url, "webhook_event_failover_url": failover });
        self.post("/v2/call_control_applications", body).await["data"]["id"].as_str().unwrap().to_owned()
    }

    async fn dial(&self, connection: &str, to: &str) -> String {
        let body = json!({ "connection_id": connection, "to": to, "from": "+13125550100", "client_state": "aGVsbG8=" });
        self.post("/v2/calls", body).await["data"]["call_control_id"].as_str().unwrap().to_owned()
    }
}

/// Wait until `got` holds at least `n` deliveries.
async fn wait_for(got: &Received, n: usize) {
    for _ in 0..400 {
        if got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} webhooks, got {}", got.lock().unwrap().len());
}

fn verify(public_key: &str, timestamp: &str, signature: &str, body: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key: [u8; 32] = b64.decode(public_key).unwrap().try_into().unwrap();
    let sig: [u8; 64] = match b64.decode(signature).ok().and_then(|s| s.try_into().ok()) {
        Some(s) => s,
        None => return false,
    };
    let message = format!("{timestamp}|{body}");
    VerifyingKey::from_bytes(&key).unwrap().verify(message.as_bytes(), &Signature::from_bytes(&sig)).is_ok()
}

/// Event types per call, in delivery order.
fn by_call(got: &Received) -> Vec<(String, String)> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(_, _, body)| {
            let v: Value = serde_json::from_str(body).unwrap();
            let call = v["data"]["payload"]["call_control_id"].as_str().unwrap_or_default().to_owned();
            (call, v["data"]["event_type"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn events_of(all: &[(String, String)], call: &str) -> Vec<String> {
    all.iter().filter(|(c, _)| c == call).map(|(_, e)| e.clone()).collect()
}

#[tokio::test]
async fn signed_events_arrive_in_order_in_telnyx_envelopes() {
    let dir = tempfile::tempdir().unwrap();
    for url in crate::common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let bond = start_bond(sub.path(), &url).await;
        let api = Api::new(&bond);
        let (hook_addr, got, _) = receiver("127.0.0.1:0".parse().unwrap(), StatusCode::OK).await;
        let conn = api.connection(&format!("http://{hook_addr}/hooks"), None).await;
        let tone = api.dial(&conn, "loop:tone").await;
        let echo = api.dial(&conn, "loop:echo").await;
        api.post(
            &format!("/v2/calls/{tone}/actions/bridge"),
            json!({ "call_control_id_to_bridge_with": echo }),
        )
        .await;
        api.post(&format!("/v2/calls/{tone}/actions/hangup"), json!({})).await;
        wait_for(&got, 8).await;

        let all = by_call(&got);
        let expected = ["call.initiated", "call.answered", "call.bridged", "call.hangup"];
        assert_eq!(events_of(&all, &tone), expected);
        assert_eq!(events_of(&all, &echo), expected);

        let public_key =
            api.get("/v2/webhook_public_key").await["data"]["public_key"].as_str().unwrap().to_owned();
        let mut ids = HashSet::new();
        for (timestamp, signature, body) in got.lock().unwrap().iter() {
            assert!(verify(&public_key, timestamp, signature, body), "bad signature on {body}");
            assert!(
                !verify(&public_key, timestamp, signature, &body.replace("call.", "calL.")),
                "tamper detected"
            );
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["data"]["record_type"], "event");
            assert_eq!(v["meta"]["attempt"], 1);
            assert_eq!(v["meta"]["delivered_to"], format!("http://{hook_addr}/hooks"));
            assert_eq!(v["data"]["payload"]["client_state"], "aGVsbG8=");
            assert_eq!(v["data"]["payload"]["connection_id"], conn.as_str());
            assert!(ids.insert(v["data"]["id"].as_str().unwrap().to_owned()), "one id per event");
        }
        let hangup =
            got.lock().unwrap().iter().rev().find(|(_, _, b)| b.contains("call.hangup")).unwrap().2.clone();
        let hangup: Value = serde_json::from_str(&hangup).unwrap();
        assert!(hangup["data"]["payload"]["call_quality_stats"]["inbound"]["mos"].is_string());
        bond.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_failing_primary_url_falls_over_after_three_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bond.db").display());
    let bond = start_bond(dir.path(), &url).await;
    let api = Api::new(&bond);
    let (bad_addr, bad, _) =
        receiver("127.0.0.1:0".parse().unwrap(), StatusCode::INTERNAL_SERVER_ERROR).await;
    let (good_addr, good, _) = receiver("127.0.0.1:0".parse().unwrap(), StatusCode::OK).await;
    let conn =
        api.connection(&format!("http://{bad_addr}/hooks"), Some(&format!("http://{good_addr}/hooks"))).await;
    api.dial(&conn, "loop:silence").await;
    wait_for(&good, 2).await;
    let first: Value = serde_json::from_str(&good.lock().unwrap()[0].2).unwrap();
    assert_eq!(first["data"]["event_type"], "call.initiated");
    assert_eq!(first["meta"]["attempt"], 4);
    assert_eq!(first["meta"]["delivered_to"], format!("http://{good_addr}/hooks"));
    let attempts: Vec<i64> = bad
        .lock()
        .unwrap()
        .iter()
        .map(|(_, _, b)| serde_json::from_str::<Value>(b).unwrap()["meta"]["attempt"].as_i64().unwrap())
        .take(3)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    bond.stop().await.unwrap();
}

#[tokio::test]
async fn events_queued_while_the_receiver_is_down_arrive_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    for url in crate::common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        // A port with nothing listening: every attempt is refused.
        let (held, port) = refusing_port();
        let bond = start_bond(sub.path(), &url).await;
        let api = Api::new(&bond);
        let conn = api.connection(&format!("http://{port}/hooks"), None).await;
        let tone = api.dial(&conn, "loop:tone").await;
        let echo = api.dial(&conn, "loop:echo").await;
        api.post(
            &format!("/v2/calls/{tone}/actions/bridge"),
            json!({ "call_control_id_to_bridge_with": echo }),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Stopping Bond hangs up both calls: their call.hangup joins the queue.
        bond.stop().await.unwrap();

        let bond = start_bond(sub.path(), &url).await;
        drop(held);
        let (_, got, _) = receiver(port, StatusCode::OK).await;
        wait_for(&got, 8).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let all = by_call(&got);
        assert_eq!(all.len(), 8, "each event once: {all:?}");
        let expected = ["call.initiated", "call.answered", "call.bridged", "call.hangup"];
        assert_eq!(events_of(&all, &tone), expected);
        assert_eq!(events_of(&all, &echo), expected);
        let ids: HashSet<String> = got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, b)| {
                serde_json::from_str::<Value>(b).unwrap()["data"]["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 8);
        let attempts_of_first: i64 = serde_json::from_str::<Value>(&got.lock().unwrap()[0].2).unwrap()
            ["meta"]["attempt"]
            .as_i64()
            .unwrap();
        assert!(attempts_of_first > 1, "it had been tried while the receiver was down");
        // Each is marked delivered after its answer arrives: on a busy machine, later.
        let mut undelivered = bond.state.store.undelivered_count().await.unwrap();
        for _ in 0..100 {
            if undelivered == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            undelivered = bond.state.store.undelivered_count().await.unwrap();
        }
        assert_eq!(undelivered, 0, "every event delivered is marked so");
        bond.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_receiver_that_is_down_holds_back_only_its_own_calls_events() {
    let dir = tempfile::tempdir().unwrap();
    for url in crate::common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let bond = start_bond(sub.path(), &url).await;
        let api = Api::new(&bond);
        // More events than the worker reads at a time, all for a receiver that refuses them.
        let (_held, down) = refusing_port();
        let stuck = api.connection(&format!("http://{down}/hooks"), None).await;
        for _ in 0..110 {
            api.dial(&stuck, "loop:silence").await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(bond.state.store.undelivered_count().await.unwrap() >= 220);

        let (addr, got, _) = receiver("127.0.0.1:0".parse().unwrap(), StatusCode::OK).await;
        let live = api.connection(&format!("http://{addr}/hooks"), None).await;
        let call = api.dial(&live, "loop:tone").await;
        wait_for(&got, 2).await;
        assert_eq!(events_of(&by_call(&got), &call), ["call.initiated", "call.answered"]);
        assert!(bond.state.store.undelivered_count().await.unwrap() >= 220, "the other receiver's wait");
        bond.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_delay_another_receivers_events() {
    let dir = tempfile::tempdir().unwrap();
    for url in crate::common::database_urls(dir.path()).await {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let bond = start_bond(sub.path(), &url).await;
        let api = Api::new(&bond);
        // A receiver that accepts connections and never answers (Bond waits 30 s for it).
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let holder = held.clone();
        let hold = tokio::spawn(async move {
            while let Ok((socket, _)) = silent.accept().await {
                holder.lock().unwrap().push(socket);
            }
        });
        let slow = api.connection(&format!("http://{silent_addr}/hooks"), None).await;
        for _ in 0..40 {
            api.dial(&slow, "loop:silence").await;
        }
        let (addr, got, _) = receiver("127.0.0.1:0".parse().unwrap(), StatusCode::OK).await;
        let live = api.connection(&format!("http://{addr}/hooks"), None).await;
        let call = api.dial(&live, "loop:tone").await;
        tokio::time::timeout(Duration::from_secs(10), wait_for(&got, 2))
            .await
            .expect("the live receiver's events waited for the silent one");
        assert_eq!(events_of(&by_call(&got), &call), ["call.initiated", "call.answered"]);
        // The silent receiver's own calls are still undelivered: it has not answered once.
        assert!(bond.state.store.undelivered_count().await.unwrap() >= 80);
        assert!(!held.lock().unwrap().is_empty(), "Bond did try the silent receiver");
        hold.abort();
        bond.stop().await.unwrap();
    }
}
