//! Liveness, readiness and Prometheus metrics: the endpoints that need no API key.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bond_agents::{AgentControl, AgentState};
use bond_media_engine::runtime::{RuntimeMetrics, TIMER_LATENESS_BUCKETS_US};
use serde_json::json;

use crate::state::AppState;

/// `GET /health`: the process is up.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is up", body = Object)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "instance_id": state.instance_id }))
}

/// `GET /ready`: the database answers. 503 otherwise, so a load balancer stops sending.
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "The database answers", body = Object), (status = 503, description = "The database does not answer", body = Object)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.store.db().is_ready().await {
        (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "database": "unreachable" })))
    }
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = state.engine.metrics();
    metrics::gauge!("bond_engine_shards").set(state.engine.shards() as f64);
    metrics::gauge!("bond_legs_active").set(RuntimeMetrics::get(&m.legs_active) as f64);
    metrics::counter!("bond_legs_created_total").absolute(RuntimeMetrics::get(&m.legs_created));
    metrics::counter!("bond_rtp_packets_received_total").absolute(RuntimeMetrics::get(&m.packets_received));
    metrics::counter!("bond_rtp_packets_sent_total").absolute(RuntimeMetrics::get(&m.packets_sent));
    metrics::counter!("bond_rtp_packets_dropped_total").absolute(RuntimeMetrics::get(&m.packets_dropped));
    metrics::counter!("bond_rtp_packets_rejected_total").absolute(RuntimeMetrics::get(&m.packets_rejected));
    metrics::counter!("bond_srtp_packets_rejected_total").absolute(RuntimeMetrics::get(&m.srtp_rejected));
    metrics::counter!("bond_rtp_packets_passed_through_total")
        .absolute(RuntimeMetrics::get(&m.packets_passed_through));
    metrics::counter!("bond_rtp_packets_offloaded_total").absolute(RuntimeMetrics::get(&m.packets_offloaded));
    metrics::counter!("bond_rtp_offload_routes_total").absolute(RuntimeMetrics::get(&m.offload_routes));
    metrics::counter!("bond_stream_frames_dropped_total")
        .absolute(RuntimeMetrics::get(&m.stream_frames_dropped));
    metrics::counter!("bond_recording_frames_dropped_total")
        .absolute(RuntimeMetrics::get(&m.recording_frames_dropped));
    metrics::counter!("bond_fork_frames_dropped_total").absolute(RuntimeMetrics::get(&m.fork_frames_dropped));
    metrics::counter!("bond_bridge_frames_dropped_total")
        .absolute(RuntimeMetrics::get(&m.bridge_frames_dropped));
    metrics::counter!("bond_engine_relays_dropped_total").absolute(RuntimeMetrics::get(&m.relays_dropped));
    // Cumulative, as a Prometheus histogram's buckets are.
    let mut seen = 0;
    for (i, count) in m.timer_lateness.iter().enumerate() {
        seen += RuntimeMetrics::get(count);
        let le =
            TIMER_LATENESS_BUCKETS_US.get(i).map_or("+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
        metrics::counter!("bond_engine_timer_lateness_seconds_bucket", "le" => le).absolute(seen);
    }
    metrics::gauge!("bond_calls_live").set(state.calls.live_calls() as f64);
    queue_gauges(&state);
    if let Ok(pending) = state.store.undelivered_count().await {
        metrics::gauge!("bond_webhooks_pending").set(pending as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.prometheus.render())
}

/// Callers waiting and the longest wait per queue, and signed-in agents by state.
/// A queue deleted, or an organization whose agents all signed out, reads 0
/// from then on rather than its last value.
fn queue_gauges(state: &AppState) {
    let now = bond_store::clock::monotonic();
    let mut queues = Vec::new();
    for (org, queue) in state.calls.queues().all() {
        let labels = (org.to_owned(), queue.name.clone());
        set_queue(&labels, queue.len() as f64, queue.longest_wait(now).as_secs_f64());
        queues.push(labels);
    }
    let states = AgentState::ALL;
    let mut counts: std::collections::BTreeMap<String, [u32; AgentState::ALL.len()]> = Default::default();
    for status in state.calls.agents().statuses(None, now) {
        let slot = states.iter().position(|s| *s == status.state).unwrap_or(0);
        counts.entry(status.organization_id).or_default()[slot] += 1;
    }
    let mut shown = SHOWN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for gone in shown.queues.iter().filter(|labels| !queues.contains(labels)) {
        set_queue(gone, 0.0, 0.0);
    }
    for gone in shown.agent_orgs.iter().filter(|org| !counts.contains_key(*org)) {
        counts_for(gone, &states, [0; AgentState::ALL.len()]);
    }
    shown.agent_orgs = counts.keys().cloned().collect();
    shown.queues = queues;
    for (org, counted) in counts {
        counts_for(&org, &states, counted);
    }
}

/// The queue and agent label sets the last render showed.
struct Shown {
    queues: Vec<(String, String)>,
    agent_orgs: Vec<String>,
}

static SHOWN: std::sync::Mutex<Shown> =
    std::sync::Mutex::new(Shown { queues: Vec::new(), agent_orgs: Vec::new() });

fn set_queue((org, queue): &(String, String), waiting: f64, longest_wait: f64) {
    let labels = [("organization_id", org.clone()), ("queue", queue.clone())];
    metrics::gauge!("bond_queue_calls_waiting", &labels).set(waiting);
    metrics::gauge!("bond_queue_longest_wait_seconds", &labels).set(longest_wait);
}

fn counts_for(org: &str, states: &[AgentState], counted: [u32; AgentState::ALL.len()]) {
    for (agent_state, n) in states.iter().zip(counted) {
        let labels = [("organization_id", org.to_owned()), ("state", agent_state.as_str().to_owned())];
        metrics::gauge!("bond_agents", &labels).set(f64::from(n));
    }
}
