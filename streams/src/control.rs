//! What a carrier media stream asks of call control, and all it asks.
//! `bond-calls` implements [`StreamControl`] for its call service; a stream
//! session never sees that service, its store or its webhooks.

use std::future::Future;

use bond_codecs::Codec;
use bond_media_engine::runtime::{EngineHandle, StreamLeg};
use bond_store::{CallId, Connection};
use serde_json::Value;

/// A carrier media stream's `start`, becoming a call.
#[derive(Debug, Clone)]
pub struct StreamCall {
    pub codec: Codec,
    pub from: String,
    pub to: String,
    pub client_state: Option<String>,
    /// Added to `call.initiated`: the carrier's ids and custom parameters.
    pub extra: serde_json::Map<String, Value>,
}

/// Call control as a carrier media stream sees it.
pub trait StreamControl: Clone + Send + Sync + 'static {
    /// Why a stream could not become a call (logged; the socket closes with 1011).
    type Refused: std::fmt::Debug + Send;

    /// The media engine, which the session settles on one driver's shard.
    fn engine(&self) -> &EngineHandle;

    /// A stream started: create its leg on `placed` and make it a call (a new
    /// incoming one, or the call Bond dialed through the carrier whose media
    /// this is). Returns the call and the leg the session feeds.
    fn started(
        &self,
        connection: &Connection,
        stream: StreamCall,
        placed: &EngineHandle,
    ) -> impl Future<Output = Result<(CallId, StreamLeg), Self::Refused>> + Send;

    /// The carrier stopped the stream (`stopped`), or its socket closed: end the call.
    fn ended(&self, call: &CallId, stopped: bool) -> impl Future<Output = ()> + Send;
}
