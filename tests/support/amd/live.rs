//! The corpus through a real Bond: the `bond` binary is started on a scratch
//! data directory, each clip is dialed as `loop:play` with premium AMD, and the
//! verdicts come back as webhooks whose Ed25519 signatures are checked.

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
use tokio::sync::{Notify, Semaphore};

use super::corpus::ClipInfo;
use super::eval::{verdict_name, Outcome};

const KEY: &str = "amd-report-bootstrap-key";

/// Machine-detection webhooks received, by call.
#[derive(Debug, Default)]
struct Inbox {
    events: Mutex<HashMap<String, Vec<(String, Value)>>>,
    bad_signatures: Mutex<usize>,
    key: Mutex<Option<VerifyingKey>>,
    arrived: Notify,
}

/// Kills the child process when dropped.
struct Bond(Child);

impl Drop for Bond {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port())
}

async fn receive(State(inbox): State<Arc<Inbox>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signature = base64::engine::general_purpose::STANDARD
        .decode(header("telnyx-signature-ed25519"))
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok());
    let signed = [header("telnyx-timestamp").as_bytes(), b"|", &body].concat();
    let key = *inbox.key.lock().unwrap_or_else(|e| e.into_inner());
    let valid = matches!((key, signature), (Some(k), Some(s)) if k.verify(&signed, &s).is_ok());
    if !valid {
        *inbox.bad_signatures.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        return "ok";
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else { return "ok" };
    let data = &event["data"];
    let event_type = data["event_type"].as_str().unwrap_or_default().to_owned();
    if event_type.starts_with("call.machine.") {
        let call = data["payload"]["call_control_id"].as_str().unwrap_or_default().to_owned();
        let mut events = inbox.events.lock().unwrap_or_else(|e| e.into_inner());
        events.entry(call).or_default().push((event_type, data["payload"].clone()));
        inbox.arrived.notify_waiters();
    }
    "ok"
}

/// Run every clip through the `bond` at `bond_bin`, `concurrency` calls at a time.
pub async fn run(
    bond_bin: &Path,
    corpus_dir: &Path,
    clips: &[ClipInfo],
    concurrency: usize,
) -> Result<Vec<Outcome>, String> {
    let data = tempfile::tempdir().map_err(|e| e.to_string())?;
    for clip in clips {
        let from =
            std::fs::canonicalize(corpus_dir.join(&clip.file)).map_err(|e| format!("{}: {e}", clip.file))?;
        std::os::unix::fs::symlink(from, data.path().join(&clip.file)).map_err(|e| e.to_string())?;
    }
    let inbox = Arc::new(Inbox::default());
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let hooks_url = format!("http://{}/hooks", hooks.local_addr().map_err(|e| e.to_string())?);
    let app = axum::Router::new().route("/hooks", axum::routing::post(receive)).with_state(inbox.clone());
    tokio::spawn(async move { axum::serve(hooks, app).await });

    let port = free_port()?;
    let _bond = Bond(
        Command::new(bond_bin)
            .arg("serve")
            .env("BOND_DATA_DIR", data.path())
            .env("BOND_HTTP_LISTEN", format!("127.0.0.1:{port}"))
            .env("BOND_RTP_BIND_IP", "127.0.0.1")
            .env("BOND_BOOTSTRAP_API_KEY", KEY)
            .env("BOND_RATE_LIMIT_PER_SECOND", "100000")
            .env("BOND_RATE_LIMIT_BURST", "100000")
            .env("BOND_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bond_bin.display()))?,
    );
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{api}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        return Err("bond did not start".into());
    }
    let get = |path: &str| http.get(format!("{api}{path}")).bearer_auth(KEY).send();
    let key: Value = get("/v2/webhook_public_key")
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let key_bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(key["data"]["public_key"].as_str().unwrap_or_default())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("bad webhook public key")?;
    *inbox.key.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(VerifyingKey::from_bytes(&key_bytes).map_err(|e| e.to_string())?);
    let connection: Value = http
        .post(format!("{api}/v2/call_control_applications"))
        .bearer_auth(KEY)
        .json(&json!({ "application_name": "amd-report", "webhook_event_url": hooks_url }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let connection_id = connection["data"]["id"].as_str().ok_or("no connection id")?.to_owned();

    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for clip in clips.iter().cloned() {
        let permit = limit.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        let (http, api, inbox, connection_id) =
            (http.clone(), api.clone(), inbox.clone(), connection_id.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = one_clip(&http, &api, &inbox, &connection_id, clip).await;
            drop(permit);
            outcome
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| e.to_string())??);
    }
    let bad = *inbox.bad_signatures.lock().unwrap_or_else(|e| e.into_inner());
    if bad > 0 {
        return Err(format!("{bad} webhooks had a bad signature"));
    }
    Ok(outcomes)
}

async fn one_clip(
    http: &reqwest::Client,
    api: &str,
    inbox: &Inbox,
    connection_id: &str,
    clip: ClipInfo,
) -> Result<Outcome, String> {
    let body = json!({ "connection_id": connection_id, "to": format!("loop:play?file={}", clip.file),
        "from": "+13125550100", "answering_machine_detection": "premium" });
    let response = http.post(format!("{api}/v2/calls")).bearer_auth(KEY).json(&body).send().await;
    let dialed: Value = response.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let call = dialed["data"]["call_control_id"]
        .as_str()
        .ok_or_else(|| format!("dial failed: {dialed}"))?
        .to_owned();
    let mut outcome = Outcome { clip, verdict: None, verdict_ms: None, greeting: None };
    // The verdict comes within the analysis time; a machine's greeting end within 30 s.
    let _ = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            let arrived = inbox.arrived.notified();
            let events = inbox
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&call)
                .cloned()
                .unwrap_or_default();
            for (event_type, payload) in &events {
                let result = payload["result"].as_str().unwrap_or_default();
                let at = payload["decision_time_millis"].as_u64().map(|v| v as u32);
                if event_type.ends_with("detection.ended") {
                    outcome.verdict = Some(verdict_name(result).to_owned());
                    outcome.verdict_ms = at;
                } else {
                    outcome.greeting = at.map(|at| (result.to_owned(), at));
                }
            }
            let finished =
                outcome.greeting.is_some() || outcome.verdict.as_deref().is_some_and(|v| v != "machine");
            if finished {
                break;
            }
            arrived.await;
        }
    })
    .await;
    let _ = http
        .post(format!("{api}/v2/calls/{call}/actions/hangup"))
        .bearer_auth(KEY)
        .json(&json!({}))
        .send()
        .await;
    Ok(outcome)
}
