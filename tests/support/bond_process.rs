//! A real `bond serve` for the tools in `tests/bin`: started on a scratch data
//! directory with a bootstrap key, with a webhook receiver that checks each
//! webhook's Ed25519 signature and keeps the events.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub const KEY: &str = "tools-bootstrap-key-0001";

/// Signed webhooks received: `(event_type, payload)` per call, in arrival order.
#[derive(Debug, Default)]
pub struct Inbox {
    calls: Mutex<HashMap<String, Vec<(String, Value)>>>,
    pub bad_signatures: Mutex<usize>,
    key: Mutex<Option<VerifyingKey>>,
    /// Per call, woken on each of its events (see [`Inbox::arrivals`]).
    arrivals: Mutex<HashMap<String, Arc<Notify>>>,
    /// Each event is also sent to these (see [`Inbox::subscribe`]).
    subscribers: Mutex<Vec<tokio::sync::mpsc::UnboundedSender<(String, Value)>>>,
}

impl Inbox {
    /// The events of one call.
    pub fn of(&self, call_control_id: &str) -> Vec<(String, Value)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).get(call_control_id).cloned().unwrap_or_default()
    }

    /// What wakes on each event of `call_control_id`: a call waiting for its
    /// own events is not woken by every other call's (hundreds at once).
    pub fn arrivals(&self, call_control_id: &str) -> Arc<Notify> {
        let mut arrivals = self.arrivals.lock().unwrap_or_else(|e| e.into_inner());
        arrivals.entry(call_control_id.to_owned()).or_default().clone()
    }

    /// Every event of every call.
    pub fn all(&self) -> Vec<(String, Value)> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).values().flatten().cloned().collect()
    }

    /// The calls that have had events.
    pub fn call_ids(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// The events that arrive from now on, in arrival order.
    pub fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<(String, Value)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
        rx
    }
}

/// A running `bond serve`, killed when dropped.
#[derive(Debug)]
pub struct BondProcess {
    child: Child,
    pub api: String,
    pub port: u16,
    /// Where Bond takes SIP, on UDP and TCP.
    pub sip_port: u16,
    pub http: reqwest::Client,
    pub inbox: Arc<Inbox>,
    pub hooks_url: String,
    _data: tempfile::TempDir,
}

impl Drop for BondProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header("telnyx-signature-ed25519"))
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    let signed = [header("telnyx-timestamp").as_bytes(), b"|", &body].concat();
    let key = *inbox.key.lock().unwrap_or_else(|e| e.into_inner());
    if !matches!((key, signature), (Some(k), Some(s)) if k.verify(&signed, &s).is_ok()) {
        *inbox.bad_signatures.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        return "ok";
    }
    if let Ok(event) = serde_json::from_slice::<Value>(&body) {
        let data = &event["data"];
        let event_type = data["event_type"].as_str().unwrap_or_default().to_owned();
        let call = data["payload"]["call_control_id"].as_str().unwrap_or_default().to_owned();
        let event = (event_type, data["payload"].clone());
        inbox.subscribers.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| s.send(event.clone()).is_ok());
        inbox.calls.lock().unwrap_or_else(|e| e.into_inner()).entry(call.clone()).or_default().push(event);
        if let Some(arrived) = inbox.arrivals.lock().unwrap_or_else(|e| e.into_inner()).get(&call) {
            arrived.notify_waiters();
        }
    }
    "ok"
}

impl BondProcess {
    /// Start `bond_bin`; `prepare` may fill the data directory first.
    pub async fn start(
        bond_bin: &Path,
        prepare: impl FnOnce(&Path) -> Result<(), String>,
    ) -> Result<Self, String> {
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        prepare(data.path())?;
        let inbox = Arc::new(Inbox::default());
        let hooks = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let hooks_url = format!("http://{}/hooks", hooks.local_addr().map_err(|e| e.to_string())?);
        let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(inbox.clone());
        tokio::spawn(async move { axum::serve(hooks, app).await });
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let sip_port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
        let child = Command::new(bond_bin)
            .arg("serve")
            .env("BOND_DATA_DIR", data.path())
            .env("BOND_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("BOND_RTP_BIND_IP", "127.0.0.1")
            .env("BOND_SIP_UDP_LISTEN", format!("127.0.0.1:{sip_port}"))
            .env("BOND_WEBRTC_LISTEN", "127.0.0.1:0")
            .env("BOND_SIP_TCP_LISTEN", format!("127.0.0.1:{sip_port}"))
            .env("BOND_BOOTSTRAP_API_KEY", KEY)
            .env("BOND_RATE_LIMIT_PER_SECOND", "100000")
            .env("BOND_RATE_LIMIT_BURST", "100000")
            .env("BOND_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bond_bin.display()))?;
        let bond = Self {
            child,
            api: format!("http://127.0.0.1:{port}"),
            port,
            sip_port,
            http: reqwest::Client::new(),
            inbox,
            hooks_url,
            _data: data,
        };
        // 10 s, or `BOND_START_SECONDS` (a Bond under a heap profiler starts slowly).
        let seconds =
            std::env::var("BOND_START_SECONDS").ok().and_then(|s| s.parse::<u32>().ok()).unwrap_or(10);
        for _ in 0..seconds * 20 {
            if bond.http.get(format!("{}/health", bond.api)).send().await.is_ok() {
                let key = bond.get("/v2/webhook_public_key").await?;
                let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
                    .decode(key["data"]["public_key"].as_str().unwrap_or_default())
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or("bad webhook public key")?;
                *bond.inbox.key.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())?);
                return Ok(bond);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err("bond did not start".into())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let r = self.http.get(format!("{}{path}", self.api)).bearer_auth(KEY).send().await;
        r.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())
    }

    pub async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let r = self.http.post(format!("{}{path}", self.api)).bearer_auth(KEY).json(&body).send().await;
        r.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())
    }

    /// The /metrics page.
    pub async fn metrics(&self) -> Result<String, String> {
        let r = self.http.get(format!("{}/metrics", self.api)).send().await.map_err(|e| e.to_string())?;
        r.text().await.map_err(|e| e.to_string())
    }

    /// A connection whose webhooks come to this process's inbox; `bond` settings as given.
    pub async fn connection(&self, bond_settings: Value) -> Result<String, String> {
        let body = json!({ "application_name": "tools", "webhook_event_url": self.hooks_url, "bond": bond_settings });
        let created = self.post("/v2/call_control_applications", body).await?;
        created["data"]["id"].as_str().map(str::to_owned).ok_or_else(|| format!("no connection: {created}"))
    }

    pub fn bad_signatures(&self) -> usize {
        *self.inbox.bad_signatures.lock().unwrap_or_else(|e| e.into_inner())
    }
}
