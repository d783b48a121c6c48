//! What Bond keeps in memory about a live call beside its row in the store: one
//! `LiveCall` per call id, in one map. An entry is made when something is first
//! kept for a call and is dropped as soon as nothing is, so a call that ends
//! leaves nothing behind once its stream and speech tasks have wound down.
//!
//! Legs (`registry.rs`) and the leg adapters' own dialogs (`sip_calls.rs`,
//! `telnyx.rs`, `agent_calls.rs`) keep theirs beside it.

use bond_store::CallId;
use std::sync::Arc;

use bond_media_engine::amd::AmdConfig;
use dashmap::DashMap;
use tokio::sync::watch;

use super::amd::AmdMode;
use super::speech::SpeechSettings;
use super::supervise::Supervise;
use bond_streams::fork::StreamRequest;

/// One live call's state in memory.
#[derive(Debug, Default)]
pub(crate) struct LiveCall {
    /// Answering-machine detection runs (or will, from the answer) in this mode.
    pub amd_mode: Option<AmdMode>,
    /// Detection asked for on a dial not answered yet: started by the answer.
    pub pending_amd: Option<AmdConfig>,
    /// The id of the stream carrying the call's audio out.
    pub stream: Option<String>,
    /// A stream asked for on dial, started by the answer.
    pub pending_stream: Option<StreamRequest>,
    /// Transcription and translation running on the call: what they do.
    pub speech: Option<watch::Sender<SpeechSettings>>,
    /// The call supervises another, and whether its role has started (on answer).
    pub supervising: Option<Supervising>,
    /// The digits being gathered (`gather`).
    pub gather: Option<super::gather::Running>,
    /// The voice agent talking with the party (`ai_assistant_start`).
    pub assistant: Option<super::assistant::Running>,
    /// The call is in another call's agent conversation (`ai_assistant_join`).
    pub joined: Option<super::assistant::Joined>,
    /// An agent invited the call (ringing): it joins the agent's conversation on answer.
    pub pending_join: Option<super::assistant::PendingJoin>,
    /// A message being left on the voicemail that answered the call (an invite's).
    pub voicemail_drop: Option<super::assistant::VoicemailDrop>,
    /// The call rings for a `bridge` asked of another: how to bridge them on answer.
    pub pending_bridge: Option<super::linked::PendingBridge>,
    /// The call hears a ringback while this other call rings.
    pub ringback: Option<CallId>,
    /// The call rings, and this call hears a ringback for it.
    pub rings_for: Option<CallId>,
    /// A dial whose early media this call (its linked call) is to hear.
    pub early_media_for: Option<CallId>,
    /// The call is bridged in the engine only with this one, for early media.
    pub early_bridged: Option<CallId>,
}

/// What a supervisor's call supervises.
#[derive(Debug, Clone)]
pub(crate) struct Supervising {
    pub supervise: Supervise,
    pub started: bool,
}

impl LiveCall {
    fn holds_nothing(&self) -> bool {
        let Self {
            amd_mode,
            pending_amd,
            stream,
            pending_stream,
            speech,
            supervising,
            gather,
            assistant,
            joined,
            pending_join,
            voicemail_drop,
            pending_bridge,
            ringback,
            rings_for,
            early_media_for,
            early_bridged,
        } = self;
        amd_mode.is_none()
            && pending_amd.is_none()
            && stream.is_none()
            && pending_stream.is_none()
            && speech.is_none()
            && supervising.is_none()
            && gather.is_none()
            && assistant.is_none()
            && joined.is_none()
            && pending_join.is_none()
            && voicemail_drop.is_none()
            && pending_bridge.is_none()
            && ringback.is_none()
            && rings_for.is_none()
            && early_media_for.is_none()
            && early_bridged.is_none()
    }
}

/// Every live call's `LiveCall`, by call id. Cloning shares the map.
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveCalls(Arc<DashMap<CallId, LiveCall>>);

impl LiveCalls {
    /// Change what is kept for `call` (an empty entry if there was none); the
    /// entry goes when it holds nothing any more.
    pub fn update<R>(&self, call: &CallId, change: impl FnOnce(&mut LiveCall) -> R) -> R {
        let answer = change(&mut self.0.entry(call.to_owned()).or_default());
        self.0.remove_if(call, |_, kept| kept.holds_nothing());
        answer
    }

    /// Read what is kept for `call`, if anything is.
    pub fn read<R>(&self, call: &CallId, read: impl FnOnce(&LiveCall) -> R) -> Option<R> {
        self.0.get(call).map(|kept| read(&kept))
    }

    /// The calls whose kept state matches `wanted`.
    pub fn find(&self, wanted: impl Fn(&LiveCall) -> bool) -> Vec<CallId> {
        self.0.iter().filter(|kept| wanted(kept.value())).map(|kept| kept.key().clone()).collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_exactly_as_long_as_it_holds_something() {
        let (live, a) = (LiveCalls::default(), CallId::from("a"));
        live.update(&a, |c| c.stream = Some("s1".into()));
        live.update(&a, |c| c.amd_mode = Some(AmdMode::Detect));
        assert_eq!(live.read(&a, |c| c.stream.clone()), Some(Some("s1".into())));
        live.update(&a, |c| c.stream = None);
        assert_eq!(live.len(), 1, "still detecting");
        live.update(&a, |c| c.amd_mode = None);
        assert_eq!(live.len(), 0);
        assert!(live.read(&a, |_| ()).is_none());
    }

    #[test]
    fn looking_at_an_unknown_call_keeps_nothing_for_it() {
        let live = LiveCalls::default();
        assert_eq!(live.update(&CallId::from("gone"), |c| c.stream.take()), None);
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn find_answers_the_calls_that_match() {
        let (live, a) = (LiveCalls::default(), CallId::from("a"));
        live.update(&a, |c| c.amd_mode = Some(AmdMode::Detect));
        live.update(&CallId::from("b"), |c| c.stream = Some("s".into()));
        assert_eq!(live.find(|c| c.amd_mode.is_some()), vec![a]);
    }
}
