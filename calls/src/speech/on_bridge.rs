//! The organization's voice config on a new bridge: `transcribe` and
//! `live_translate` start speech on both calls of it.

use bond_store::CallRecord;

use super::{Tracks, TranscriptionRequest, TranslationRequest};
use crate::service::CallService;

impl CallService {
    /// The organization's voice config on a new bridge: `transcribe` transcribes
    /// both parties; `live_translate` translates both ways, the customer speaking
    /// `translate_from` and the agent (an `agent:` call, else `b`) `translate_to`.
    pub(crate) async fn speech_on_bridge(&self, a: &CallRecord, b: &CallRecord) {
        let Ok(config) = self.store.voice_config(&a.organization_id).await else { return };
        let (customer, agent) = if is_agent(a) && !is_agent(b) { (b, a) } else { (a, b) };
        let mut started = Vec::new();
        if config.transcribe {
            for call in [customer, agent] {
                let language = if call == agent { &config.translate_to } else { &config.translate_from };
                let language = language.clone().unwrap_or_else(|| "en".into());
                let request = TranscriptionRequest {
                    engine: None,
                    tracks: Tracks::Inbound,
                    language,
                    interim_results: false,
                };
                started.push(self.start_transcription(call, request).await);
            }
        }
        if let (true, Some(from), Some(to)) =
            (config.live_translate, config.translate_from, config.translate_to)
        {
            for (call, from, to) in [(customer, &from, &to), (agent, &to, &from)] {
                let request = TranslationRequest {
                    from: from.clone(),
                    to: to.clone(),
                    voice_to_voice: config.voice_to_voice,
                };
                started.push(self.start_translation(call, request).await);
            }
        }
        for result in started {
            if let Err(e) = result {
                tracing::warn!(call = %a.call_control_id, error = ?e, "the voice config's speech did not start on the bridge");
            }
        }
    }
}

/// A browser agent's call: dialed as `agent:<name>`, or placed from the softphone.
fn is_agent(call: &CallRecord) -> bool {
    call.to.starts_with("agent:") || call.from.starts_with("agent:")
}
