//! Actions on a call another node carries go to that node over NATS
//! (request/reply, `cluster.nats_url`), and are answered there as if they had
//! come to it (docs/cluster.md). The node the request reached has checked who
//! may act; the node that carries the call parses the action again, carries it
//! out and answers with the status and body the client gets.
//!
//! Each node listens on `bond.<instance>.actions.<node_id>` (`instance`: the
//! database's id, so two clusters on one NATS never meet). "No responders" means
//! the node is gone: the client gets 503 with Retry-After while the others
//! notice (its lease lapses within seconds) and end its calls.

use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bond_calls::Command;
use bond_store::{CallId, CallRecord};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::actions::carry_out;
use super::ApiError;
use crate::state::AppState;

/// How long a node waits for the node carrying a call to answer an action.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// An action on its way to the node that carries the call.
#[derive(Debug, Serialize, Deserialize)]
struct Forwarded {
    organization_id: String,
    call_control_id: String,
    action: String,
    body: Value,
}

/// That node's answer, as the client gets it.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    status: u16,
    body: Value,
}

/// This node's end of the bus.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: Client,
    instance: String,
}

impl Forwarder {
    /// Connect to NATS at `url` (in the background: a NATS down at start is
    /// retried, and actions for other nodes answer 503 meanwhile).
    pub async fn connect(url: &str, instance: &str) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name("bond")
            .retry_on_initial_connect()
            .request_timeout(Some(ANSWER_WITHIN))
            .connect(url)
            .await
            .map_err(|e| format!("cluster.nats_url {url}: {e}"))?;
        Ok(Self { client, instance: instance.to_owned() })
    }

    fn subject(&self, node_id: &str) -> String {
        format!("bond.{}.actions.{node_id}", self.instance)
    }

    /// Send action `name` on `call` to node `node_id`; its answer, or why there is none.
    pub async fn forward(&self, node_id: &str, call: &CallRecord, name: &str, body: &Value) -> Response {
        let request = Forwarded {
            organization_id: call.organization_id.clone(),
            call_control_id: call.call_control_id.to_string(),
            action: name.to_owned(),
            body: body.clone(),
        };
        let payload = match serde_json::to_vec(&request) {
            Ok(payload) => payload,
            Err(e) => return ApiError::internal(&e).into_response(),
        };
        let started = bond_store::clock::monotonic();
        let reply = self.client.request(self.subject(node_id), payload.into()).await;
        metrics::histogram!("bond_action_forward_seconds").record(started.elapsed().as_secs_f64());
        match reply {
            Ok(message) => match serde_json::from_slice::<Answer>(&message.payload) {
                Ok(answer) => {
                    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
                    (status, Json(answer.body)).into_response()
                }
                Err(e) => {
                    ApiError::internal(&format!("node {node_id} answered garbage: {e}")).into_response()
                }
            },
            Err(e) => {
                let (status, detail) = match e.kind() {
                    RequestErrorKind::NoResponders => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("Node {node_id}, which carries this call, is not answering; retry shortly."),
                    ),
                    RequestErrorKind::TimedOut => (
                        StatusCode::GATEWAY_TIMEOUT,
                        format!("Node {node_id}, which carries this call, did not answer in time."),
                    ),
                    RequestErrorKind::Other => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "The cluster's bus (NATS) cannot be reached; retry shortly.".to_owned(),
                    ),
                };
                tracing::warn!(node = node_id, error = %e, "an action could not be forwarded");
                let mut response =
                    ApiError::new(status, "10007", "Call's node unavailable", detail).into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
        }
    }

    /// Answer the actions other nodes send for calls this node carries, until
    /// the bus closes.
    pub async fn serve(self, state: AppState) {
        let subject = self.subject(state.store.node_id());
        let mut requests = match self.client.subscribe(subject.clone()).await {
            Ok(requests) => requests,
            Err(e) => return tracing::error!(%subject, error = %e, "cannot take actions from other nodes"),
        };
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply else { continue };
            let (client, state) = (self.client.clone(), state.clone());
            tokio::spawn(async move {
                let answer = answer(&state, &message.payload).await;
                let payload = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, payload.into()).await {
                    tracing::warn!(error = %e, "could not answer a forwarded action");
                }
            });
        }
    }
}

/// Carry out a forwarded action as this node would its own request's.
async fn answer(state: &AppState, payload: &[u8]) -> Answer {
    let response = match serde_json::from_slice::<Forwarded>(payload) {
        Ok(request) => carry_out_forwarded(state, request).await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => ApiError::internal(&format!("a forwarded action was garbled: {e}")).into_response(),
    };
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

async fn carry_out_forwarded(state: &AppState, request: Forwarded) -> Result<Response, ApiError> {
    let id = CallId::from(request.call_control_id);
    let call = state.store.get_call(&request.organization_id, &id).await.map_err(|e| ApiError::internal(&e));
    let call = call?.ok_or_else(|| ApiError::not_found("No call with that call_control_id."))?;
    let command = Command::parse(&request.action, &request.body)?;
    carry_out(state, &call, &request.action, command).await
}
