//! What agent signalling asks of call control, and all it asks.
//! `bond-calls` implements [`AgentControl`] for its call service; the adapter
//! never sees that service, its store or its webhooks.
//!
//! Refusals come back as the detail the browser is shown in an `error` frame.

use std::future::Future;

use bond_codecs::dtmf::DtmfDigit;
use bond_codecs::Codec;
use bond_media_engine::runtime::EngineHandle;
use bond_media_engine::LegId;
use bond_store::{CallId, Connection, Ending};

use crate::registry::Agents;

/// Call control as agent signalling sees it.
pub trait AgentControl: Clone + Send + Sync + 'static {
    /// The signed-in agents and their calls (call control rings and releases them).
    fn agents(&self) -> &Agents;

    /// The engine to make `call`'s leg on: near the call it will be bridged
    /// with or supervises, so the two share a shard.
    fn engine_for(&self, call: &CallId) -> EngineHandle;

    /// The agent accepted ringing `call` and its leg is up: answer the call.
    /// The leg is call control's from here, also when this fails.
    fn accepted(
        &self,
        call: &CallId,
        leg: LegId,
        codec: Codec,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// The active connection `connection_id` of `organization_id`, for a call the agent places.
    fn connection(
        &self,
        organization_id: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Connection, String>> + Send;

    /// The agent places a call: its leg `leg` becomes call `call`, an incoming
    /// call from `from` to `to` on `connection`, answered and parked. The leg is
    /// call control's from here, also when this fails.
    fn placed(
        &self,
        connection: &Connection,
        call: &CallId,
        from: String,
        to: String,
        leg: LegId,
        codec: Codec,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// The agent became available to queues (or stopped being): they may offer it a call now.
    fn availability_changed(&self, organization_id: &str) -> impl Future<Output = ()> + Send;

    /// The agent's side of `call` ended.
    fn ended(&self, call: &CallId, ending: Ending) -> impl Future<Output = ()> + Send;

    /// A candidate the agent's browser trickled for its leg of `call`;
    /// refused (with why) when the leg is not up or the line is no candidate.
    fn add_ice_candidate(
        &self,
        call: &CallId,
        candidate: String,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Mute (or unmute) what the agent says on live `call`.
    fn mute(
        &self,
        organization_id: &str,
        call: &CallId,
        muted: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Hold (silence both ways) or resume live `call`.
    fn hold(
        &self,
        organization_id: &str,
        call: &CallId,
        held: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// Play `digits` to the party live `call` is bridged with.
    fn digits_to_partner(
        &self,
        organization_id: &str,
        call: &CallId,
        digits: Vec<DtmfDigit>,
    ) -> impl Future<Output = Result<(), String>> + Send;
}
