//! Live SIP calls: their dialog and media, by Bond call and by SIP Call-ID.

use bond_store::CallId;
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use rsipstack::dialog::invite_dialog::InviteDialog;

use super::media::CallMedia;
use super::SipStack;

/// One SIP call.
#[derive(Clone)]
pub struct SipCall {
    pub call_control_id: CallId,
    pub connection_id: String,
    pub dialog: InviteDialog,
    pub incoming: bool,
    pub answered: bool,
    pub media: CallMedia,
    pub codecs: Vec<bond_codecs::Codec>,
    /// Taken by each NOTIFY of a REFER's progress, so they leave in order (`refer.rs`).
    pub refer_lane: Arc<tokio::sync::Mutex<()>>,
    /// An incoming call's ring timeout, stopped once the call is answered or
    /// gone: a task kept for the whole `sip.ring_timeout_secs` held several KiB
    /// of every call.
    pub ring_timer: Option<tokio::task::AbortHandle>,
}

impl std::fmt::Debug for SipCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCall")
            .field("call_control_id", &self.call_control_id)
            .field("dialog", &self.dialog.id().to_string())
            .field("incoming", &self.incoming)
            .field("answered", &self.answered)
            .finish()
    }
}

/// The SIP side of the call service. Empty (and dialing refused) until
/// `bond serve` starts the SIP stack.
#[derive(Debug, Clone, Default)]
pub struct SipCalls {
    stack: Arc<OnceLock<Arc<SipStack>>>,
    calls: Arc<DashMap<CallId, SipCall>>,
    by_sip_call_id: Arc<DashMap<String, CallId>>,
    per_connection: Arc<DashMap<String, usize>>,
}

impl SipCalls {
    pub fn install(&self, stack: Arc<SipStack>) {
        let _ = self.stack.set(stack);
    }

    pub fn stack(&self) -> Option<&Arc<SipStack>> {
        self.stack.get()
    }

    pub fn insert(&self, call: SipCall) {
        self.by_sip_call_id.insert(call.dialog.id().call_id.clone(), call.call_control_id.clone());
        *self.per_connection.entry(call.connection_id.clone()).or_default() += 1;
        self.calls.insert(call.call_control_id.clone(), call);
    }

    pub fn get(&self, call_control_id: &CallId) -> Option<SipCall> {
        self.calls.get(call_control_id).map(|c| c.clone())
    }

    /// Change a live call in place.
    pub fn update<T>(&self, call_control_id: &CallId, change: impl FnOnce(&mut SipCall) -> T) -> Option<T> {
        self.calls.get_mut(call_control_id).map(|mut c| change(&mut c))
    }

    /// The Bond call of a SIP Call-ID.
    pub fn by_sip_call_id(&self, sip_call_id: &str) -> Option<CallId> {
        self.by_sip_call_id.get(sip_call_id).map(|c| c.clone())
    }

    /// Forget a call; whoever removes it ends its dialog (or knows it ended).
    pub fn remove(&self, call_control_id: &CallId) -> Option<SipCall> {
        let (_, call) = self.calls.remove(call_control_id)?;
        if let Some(timer) = &call.ring_timer {
            timer.abort();
        }
        self.by_sip_call_id.remove(&call.dialog.id().call_id);
        if let Some(mut n) = self.per_connection.get_mut(&call.connection_id) {
            *n = n.saturating_sub(1);
        }
        Some(call)
    }

    /// Live SIP calls on a connection.
    pub fn active_on(&self, connection_id: &str) -> usize {
        self.per_connection.get(connection_id).map_or(0, |n| *n)
    }

    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}
