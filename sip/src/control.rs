//! What the SIP adapter asks of call control, and all it asks. `bond-calls`
//! implements [`CallControl`] for its call service; SIP never sees that
//! service, its store or its webhooks, and call control never sees a SIP
//! message: it acts on SIP calls through [`SipCalls`](crate::SipCalls).

use std::future::Future;

use bond_codecs::Codec;
use bond_media_engine::LegId;
use bond_store::db::DbError;
use bond_store::{CallId, Connection, Ending};

use super::refer::{ReferProgress, ReferRefusal};

/// A new INVITE, checked, with its leg open and its dialog registered,
/// becoming a parked call.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    pub call_control_id: CallId,
    pub leg: LegId,
    pub from: String,
    pub from_display_name: Option<String>,
    pub to: String,
    /// Encoding names in the offer, for `call.initiated`'s `offered_codecs`.
    pub offered_codecs: String,
}

/// Why call control did not take an incoming call.
#[derive(Debug, thiserror::Error)]
pub enum IncomingRefused {
    /// The connection carries its `max_concurrent_calls` already, counted
    /// over every node sharing the database.
    #[error("the connection carries its max_concurrent_calls already")]
    AtCapacity,
    #[error(transparent)]
    Store(#[from] DbError),
}

/// Call control as the SIP adapter sees it.
pub trait CallControl: Clone + Send + Sync + 'static {
    /// The active connections whose settings mention SIP: where an INVITE may land.
    fn sip_connections(&self) -> impl Future<Output = Result<Vec<Connection>, DbError>> + Send;

    /// Record a parked incoming call and send `call.initiated`, unless the
    /// connection carries `max_concurrent_calls` already. On an error the call
    /// was not recorded; the adapter refuses the INVITE.
    fn incoming(
        &self,
        connection: &Connection,
        call: IncomingCall,
        max_concurrent_calls: Option<usize>,
    ) -> impl Future<Output = Result<(), IncomingRefused>> + Send;

    /// An outgoing call was answered, its media now at `codec`: record
    /// `call.answered` and start what waited for the answer.
    fn answered(&self, call: &CallId, codec: Codec) -> impl Future<Output = Result<(), DbError>> + Send;

    /// An outgoing call that has not answered plays early media (183 or 180
    /// with SDP): its leg now carries the callee's audio.
    fn early_media(&self, call: &CallId) -> impl Future<Output = ()> + Send;

    /// The SIP side of a call has ended (the far end hung up or cancelled, the
    /// INVITE failed, nobody answered): end the call.
    fn ended(&self, call: &CallId, ending: Ending) -> impl Future<Output = ()> + Send;

    /// The peer of `call` asks Bond to call `target` (a REFER: a blind
    /// transfer). `Ok` when call control goes ahead; it then reports the
    /// outcome with [`SipCalls::notify_refer`](crate::SipCalls::notify_refer).
    fn referred(
        &self,
        call: &CallId,
        target: String,
    ) -> impl Future<Output = Result<(), ReferRefusal>> + Send;

    /// A REFER Bond sent on `call` moved on.
    fn refer_progress(&self, call: &CallId, progress: ReferProgress) -> impl Future<Output = ()> + Send;
}
