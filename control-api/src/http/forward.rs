//! Requests carried out on another node, over NATS (request/reply,
//! `cluster.nats_url`; docs/cluster.md): an action goes to the node that
//! carries its call, a dial to the node it is placed on. The node the request
//! reached has checked who may act; the other node carries the request out as
//! if it had come to it and answers with the status and body the client gets.
//!
//! Each node listens on `bond.<instance>.node.<node_id>` (`instance`: the
//! database's id, so two clusters on one NATS never meet). "No responders"
//! means the node is gone: the client gets 503 with Retry-After while the
//! others notice (its lease lapses within seconds) and end its calls. A node
//! that stalls, or dies before the NATS server has dropped its subscription,
//! takes the request without answering: the requesting node watches its lease
//! meanwhile and answers 503 as soon as it lapses, not 504 at the timeout.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bond_calls::trunk::{PartnerLeft, PeerFuture, Peers, TrunkOffer, TrunkRefusal};
use bond_calls::{Command, LEASE_RENEWED_EVERY};
use bond_store::{CallId, Store};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::actions::carry_out;
use super::{found, ApiError};
use crate::auth::Principal;
use crate::state::AppState;

/// How long a node waits for another to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How long a starting node waits for NATS before it registers anyway.
const SETTLE_WITHIN: Duration = Duration::from_secs(5);

/// What one node asks another to do.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Forwarded {
    /// Action `action` on a call the other node carries.
    Action { organization_id: String, call_control_id: CallId, action: String, body: Value },
    /// A dial (`POST /v2/calls` body) placed on the other node.
    Dial { principal: Principal, body: Value },
    /// Bridge a call of the other node with one of this node (`bond_calls::trunk`).
    Trunk(TrunkOffer),
    /// A call of the other node lost its partner on this node.
    PartnerLeft(PartnerLeft),
}

/// The other node's answer, as the client gets it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// This node's end of the bus.
#[derive(Debug, Clone)]
pub struct Forwarder {
    pub(super) client: Client,
    pub(super) instance: String,
    /// Where the nodes' leases are read.
    store: Store,
}

impl Forwarder {
    /// Connect to NATS at `url` (in the background: a NATS down at start is
    /// retried, and requests for other nodes answer 503 meanwhile); leases
    /// are read from `store`.
    pub async fn connect(url: &str, instance: &str, store: Store) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name("bond")
            .retry_on_initial_connect()
            .request_timeout(Some(ANSWER_WITHIN))
            .connect(url)
            .await
            .map_err(|e| format!("cluster.nats_url {url}: {e}"))?;
        Ok(Self { client, instance: instance.to_owned(), store })
    }

    /// Wait (up to [`SETTLE_WITHIN`]) until what was sent so far, subscriptions
    /// included, has reached the NATS server.
    async fn settle(&self) {
        if tokio::time::timeout(SETTLE_WITHIN, self.client.flush()).await.is_err() {
            tracing::warn!("NATS is not reachable yet; requests for other nodes answer 503 until it is");
        }
    }

    fn subject(&self, node_id: &str) -> String {
        format!("bond.{}.node.{node_id}", self.instance)
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Have node `node_id` carry out `request`; its answer, or 503/504 when it gives none.
    pub async fn forward(&self, node_id: &str, request: &Forwarded) -> Result<Answer, ApiError> {
        let answer = tokio::select! {
            answer = self.request(self.subject(node_id), request) => answer,
            () = self.lease_lapses(node_id) => Err(Unanswered::LeaseLapsed),
        };
        answer.map_err(|unanswered| unanswered.error(node_id))
    }

    /// Ready once node `node_id` holds no lease: what it has not answered by
    /// then it never will. Read as often as leases are renewed; a database
    /// that cannot be read leaves the request to its timeout.
    async fn lease_lapses(&self, node_id: &str) {
        loop {
            tokio::time::sleep(LEASE_RENEWED_EVERY).await;
            if let Ok(false) = self.store.holds_lease(node_id).await {
                return;
            }
        }
    }

    /// Send `request` to whoever answers on `subject`.
    async fn request(&self, subject: String, request: &Forwarded) -> Result<Answer, Unanswered> {
        // While the bus is down a request would wait out its whole timeout: answer at once.
        if !self.is_connected() {
            return Err(Unanswered::BusDown);
        }
        let payload = serde_json::to_vec(request).map_err(|e| Unanswered::Garbled(e.to_string()))?;
        let started = bond_store::clock::monotonic();
        let reply = self.client.request(subject.clone(), payload.into()).await;
        metrics::histogram!("bond_cluster_forward_seconds").record(started.elapsed().as_secs_f64());
        match reply {
            Ok(message) => {
                serde_json::from_slice(&message.payload).map_err(|e| Unanswered::Garbled(e.to_string()))
            }
            Err(e) => {
                tracing::warn!(%subject, error = %e, "a request could not be forwarded");
                Err(match e.kind() {
                    RequestErrorKind::NoResponders => Unanswered::NoResponders,
                    RequestErrorKind::TimedOut => Unanswered::TimedOut,
                    RequestErrorKind::Other => Unanswered::BusDown,
                })
            }
        }
    }

    /// Take what other nodes send this one: subscribed, and the subscription
    /// on the server, before the node registers and others send it anything.
    pub async fn take_requests(&self, state: &AppState) -> Option<async_nats::Subscriber> {
        let subject = self.subject(state.store.node_id());
        let requests = self.subscribe(subject).await;
        self.settle().await;
        requests
    }

    /// Messages on `subject` (`None`, logged, when NATS refuses the subscription).
    pub(super) async fn subscribe(&self, subject: String) -> Option<async_nats::Subscriber> {
        match self.client.subscribe(subject.clone()).await {
            Ok(messages) => Some(messages),
            Err(e) => {
                tracing::error!(%subject, error = %e, "cannot subscribe on NATS: other nodes' messages there are missed");
                None
            }
        }
    }

    /// Where dials to agent `agent` of `organization_id` are sent: the node
    /// holding its signaling socket answers there. Both names are hex-encoded,
    /// so nothing in them can reach into another subject.
    fn agent_subject(&self, organization_id: &str, agent: &str) -> String {
        let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
        format!("bond.{}.agent.{}.{}", self.instance, hex(organization_id), hex(agent))
    }

    /// Take dials to an agent registered here, until the returned task is aborted (it signs out).
    pub fn serve_agent(
        &self,
        state: &AppState,
        organization_id: &str,
        agent: &str,
    ) -> tokio::task::JoinHandle<()> {
        let (bus, subject, state) = (self.clone(), self.agent_subject(organization_id, agent), state.clone());
        tokio::spawn(async move {
            if let Some(requests) = bus.subscribe(subject).await {
                bus.answer(requests, state).await;
            }
        })
    }

    /// A dial to an agent registered on another node, carried out there;
    /// `None` when no node has that agent registered.
    pub async fn dial_agent(
        &self,
        organization_id: &str,
        agent: &str,
        request: &Forwarded,
    ) -> Option<Result<Answer, ApiError>> {
        let subject = self.agent_subject(organization_id, agent);
        match self.request(subject, request).await {
            Err(Unanswered::NoResponders) => None,
            answer => Some(answer.map_err(|unanswered| unanswered.error(&format!("of agent {agent}")))),
        }
    }

    /// Carry out each of `requests` and answer it, until the bus closes.
    pub async fn answer(self, mut requests: async_nats::Subscriber, state: AppState) {
        while let Some(message) = requests.next().await {
            let Some(reply_to) = message.reply else { continue };
            let (client, state) = (self.client.clone(), state.clone());
            tokio::spawn(async move {
                let answer = answer(&state, &message.payload).await;
                let payload = serde_json::to_vec(&answer).unwrap_or_default();
                if let Err(e) = client.publish(reply_to, payload.into()).await {
                    tracing::warn!(error = %e, "could not answer a forwarded request");
                }
            });
        }
    }
}

/// Why a request got no answer.
#[derive(Debug)]
enum Unanswered {
    /// NATS cannot be reached.
    BusDown,
    /// Nobody listens on the subject: the node is gone.
    NoResponders,
    /// The node's lease lapsed while the request waited: it is taken for dead.
    LeaseLapsed,
    TimedOut,
    Garbled(String),
}

impl Unanswered {
    /// The client's error, about node `node_id`.
    fn error(self, node_id: &str) -> ApiError {
        let unavailable = |status, detail: String| {
            ApiError::new(status, "10007", "Node unavailable", detail).with_retry_after(1)
        };
        match self {
            Self::BusDown => unavailable(
                StatusCode::SERVICE_UNAVAILABLE,
                "The cluster's bus (NATS) cannot be reached; retry shortly.".to_owned(),
            ),
            Self::NoResponders => unavailable(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Node {node_id}, which carries this call, is not answering; retry shortly."),
            ),
            Self::LeaseLapsed => unavailable(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "Node {node_id}, which carries this call, stopped renewing its lease; retry shortly."
                ),
            ),
            Self::TimedOut => unavailable(
                StatusCode::GATEWAY_TIMEOUT,
                format!("Node {node_id}, which carries this call, did not answer in time."),
            ),
            Self::Garbled(e) => ApiError::internal(&format!("a request to node {node_id} was garbled: {e}")),
        }
    }
}

impl Answer {
    /// The answer as the client gets it.
    pub fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_GATEWAY);
        (status, axum::Json(self.body)).into_response()
    }
}

/// Carry out a forwarded request as this node would its own.
async fn answer(state: &AppState, payload: &[u8]) -> Answer {
    let response = match serde_json::from_slice::<Forwarded>(payload) {
        Ok(request) => carry_out_forwarded(state, request).await.unwrap_or_else(IntoResponse::into_response),
        Err(e) => ApiError::internal(&format!("a forwarded request was garbled: {e}")).into_response(),
    };
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    Answer { status, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

async fn carry_out_forwarded(state: &AppState, request: Forwarded) -> Result<Response, ApiError> {
    match request {
        Forwarded::Action { organization_id, call_control_id, action, body } => {
            let lookup = state.store.get_call(&organization_id, &call_control_id).await;
            let call = found(lookup, "No call with that call_control_id.")?;
            let command = Command::parse_for(&action, &body, &call, bond_store::clock::utc_now())?;
            carry_out(state, &call, &action, command).await
        }
        Forwarded::Dial { principal, body } => super::placing::dial_here(state, &principal, body).await,
        Forwarded::Trunk(offer) => Ok(axum::Json(state.calls.accept_trunk(offer).await).into_response()),
        Forwarded::PartnerLeft(notice) => {
            state.calls.remote_partner_left(notice).await;
            Ok(axum::Json(Value::Null).into_response())
        }
    }
}

/// Bridges across nodes go over the same bus.
impl Peers for Forwarder {
    fn offer_trunk(
        &self,
        node: String,
        offer: TrunkOffer,
    ) -> PeerFuture<'_, Result<SocketAddr, TrunkRefusal>> {
        Box::pin(async move {
            let answer = self.forward(&node, &Forwarded::Trunk(offer)).await;
            let answer = answer.map_err(|_| TrunkRefusal::Unreachable(node.clone()))?;
            serde_json::from_value(answer.body)
                .unwrap_or_else(|e| Err(TrunkRefusal::Failed(format!("node {node} answered garbage: {e}"))))
        })
    }

    fn partner_left(&self, node: String, notice: PartnerLeft) -> PeerFuture<'_, Result<(), TrunkRefusal>> {
        Box::pin(async move {
            match self.request(self.subject(&node), &Forwarded::PartnerLeft(notice)).await {
                // Nobody listens for that node: it is dead or stopping, and its calls end anyway.
                Ok(_) | Err(Unanswered::NoResponders) => Ok(()),
                Err(_) => Err(TrunkRefusal::Unreachable(node)),
            }
        })
    }
}
