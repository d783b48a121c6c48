//! The agent-customer flow, driven only through Bond's HTTP API and webhooks:
//! dial the agent (no AMD); when the agent answers, dial the customer with
//! answering-machine detection; when a person (or nobody sure) answers, bridge
//! them, and when a machine does, hang both up; after a while hang up and wait
//! for both ends.
//!
//! Run against a running Bond (`BOND_BOOTSTRAP_API_KEY=... scripts/run`):
//! `cargo run -p bond-examples --example agent_customer -- <api base, e.g. http://127.0.0.1:8080/v2> <API key> [agent] [customer] [seconds]`
//! Defaults: agent `loop:echo`, customer `loop:tone?hz=440`, 5 seconds. With SIP and
//! WebRTC legs the agent would be `agent:<name>` and the customer an E.164 number.

#![allow(clippy::print_stdout)] // an example reports on stdout

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// (event_type, call_control_id, payload `result`) from each webhook.
type Events = mpsc::UnboundedReceiver<(String, String, Option<String>)>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(api), Some(key)) = (args.first(), args.get(1)) else {
        println!("usage: agent_customer <api base url> <api key> [agent] [customer] [seconds]");
        return Ok(());
    };
    let agent_to = args.get(2).map_or("loop:echo", String::as_str);
    let customer_to = args.get(3).map_or("loop:tone?hz=440", String::as_str);
    let talk = Duration::from_secs(args.get(4).and_then(|s| s.parse().ok()).unwrap_or(5));

    let (hook_url, mut events) = webhook_receiver().await?;
    let bond =
        Bond { api: api.trim_end_matches('/').to_owned(), key: key.clone(), http: reqwest::Client::new() };
    let connection = bond
        .post(
            "/call_control_applications",
            json!({ "application_name": "agent-customer example", "webhook_event_url": hook_url }),
        )
        .await?["data"]["id"]
        .as_str()
        .ok_or("no connection id")?
        .to_owned();
    println!("connection {connection}; webhooks to {hook_url}");

    // 1. The agent first, without answering-machine detection.
    let agent = bond.dial(&connection, agent_to, "disabled").await?;
    println!("dialing agent {agent_to}: {agent}");
    wait_for(&mut events, "call.answered", &agent).await?;
    println!("agent answered");

    // 2. Then the customer, with answering-machine detection.
    let customer = bond.dial(&connection, customer_to, "detect").await?;
    println!("dialing customer {customer_to}: {customer}");
    wait_for(&mut events, "call.answered", &customer).await?;
    println!("customer answered; listening for who it is");
    let verdict = wait_for(&mut events, "call.machine.detection.ended", &customer).await?;
    println!("answering-machine detection: {}", verdict.as_deref().unwrap_or("?"));
    if verdict.as_deref() == Some("machine") {
        // No agent time for machines: end both calls.
        bond.post(&format!("/calls/{customer}/actions/hangup"), json!({})).await?;
        bond.post(&format!("/calls/{agent}/actions/hangup"), json!({})).await?;
        println!("a machine answered; both calls hung up");
        return Ok(());
    }

    // 3. Bridge on answer.
    bond.post(
        &format!("/calls/{customer}/actions/bridge"),
        json!({ "call_control_id_to_bridge_with": agent }),
    )
    .await?;
    wait_for(&mut events, "call.bridged", &customer).await?;
    wait_for(&mut events, "call.bridged", &agent).await?;
    println!("bridged; talking for {talk:?}");
    tokio::time::sleep(talk).await;

    // 4. The customer hangs up; the agent's call ends with it.
    bond.post(&format!("/calls/{customer}/actions/hangup"), json!({})).await?;
    wait_for(&mut events, "call.hangup", &customer).await?;
    wait_for(&mut events, "call.hangup", &agent).await?;
    println!("both calls ended");
    Ok(())
}

struct Bond {
    api: String,
    key: String,
    http: reqwest::Client,
}

impl Bond {
    async fn post(&self, path: &str, body: Value) -> Result<Value, Box<dyn std::error::Error>> {
        let response =
            self.http.post(format!("{}{path}", self.api)).bearer_auth(&self.key).json(&body).send().await?;
        let status = response.status();
        let value: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {value}").into());
        }
        Ok(value)
    }

    async fn dial(
        &self,
        connection: &str,
        to: &str,
        amd: &str,
    ) -> Result<String, Box<dyn std::error::Error>> {
        let body = json!({ "connection_id": connection, "to": to, "from": "+13125550100", "answering_machine_detection": amd });
        let call = self.post("/calls", body).await?;
        Ok(call["data"]["call_control_id"].as_str().ok_or("no call_control_id")?.to_owned())
    }
}

/// A local HTTP server that passes each webhook's type and call on.
async fn webhook_receiver() -> std::io::Result<(String, Events)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hooks",
        post(move |body: axum::Json<Value>| {
            let tx = tx.clone();
            async move {
                let data = &body["data"];
                let call = data["payload"]["call_control_id"].as_str().unwrap_or_default().to_owned();
                let result = data["payload"]["result"].as_str().map(str::to_owned);
                let _ = tx.send((data["event_type"].as_str().unwrap_or_default().to_owned(), call, result));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let url = format!("http://{}/hooks", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, rx))
}

/// Wait (up to 30 s) for `event_type` on `call`, printing what else goes by;
/// returns the event's `result`, if it has one.
async fn wait_for(
    events: &mut Events,
    event_type: &str,
    call: &str,
) -> Result<Option<String>, Box<dyn std::error::Error>> {
    let seen = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some((kind, on, result)) = events.recv().await {
            println!("  webhook {kind} for {on}");
            if kind == event_type && on == call {
                return Some(result);
            }
        }
        None
    })
    .await;
    match seen {
        Ok(Some(result)) => Ok(result),
        _ => Err(format!("no {event_type} for {call}").into()),
    }
}
