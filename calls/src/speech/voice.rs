//! Translations spoken into the bridged call (`voice_to_voice`), and cut
//! short when the party speaks again (barge-in).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bond_codecs::resample::resample_clip;
use bond_media_engine::leg::Clip;
use bond_speech::tts::TTS_RATE;
use bond_store::clock::monotonic;
use bond_store::CallRecord;
use serde_json::json;

use super::newest::Voice;
use crate::payload::{fields, millis};
use crate::service::CallService;

impl CallService {
    /// The party speaks again: a translation still being spoken to the other side is stale.
    pub(super) async fn barge_in(&self, voice: &Voice) {
        let speaking = voice.take_if(|(_, until)| monotonic() < *until);
        if let Some((leg, _)) = speaking {
            let _ = self.engine.stop_playback(leg, true, true).await;
        }
    }
    /// Speak `text` into the call bridged with `call`, mixed over what it hears;
    /// `call.translation.spoken` says when it started playing (from `speech_ended`).
    pub(super) async fn speak_to_partner(
        &self,
        call: &CallRecord,
        text: &str,
        language: &str,
        voice: &Voice,
        speech_ended: Instant,
    ) {
        let fresh = self.store.get_call(&call.organization_id, &call.call_control_id).await.ok().flatten();
        let Some(partner) = fresh.and_then(|c| c.bridged_with).and_then(|p| self.registry.leg(&p)) else {
            return;
        };
        let Ok(engines) = &self.speech else { return };
        let started = monotonic();
        let spoken = engines.tts.speak(text, language, "").await.map_err(|e| e.to_string());
        let tts_ms = millis(started.elapsed());
        metrics::histogram!("bond_speech_stage_seconds", "stage" => "tts").record(tts_ms as f64 / 1000.0);
        let injected = monotonic();
        let result = async {
            let rate = self
                .engine
                .leg_rate(partner)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the bridged call ended")?;
            let samples = resample_clip(&spoken?, TTS_RATE.hz(), rate).map_err(|e| e.to_string())?;
            let length = Duration::from_millis(samples.len() as u64 * 1000 / u64::from(rate.hz()));
            let id = self.next_id();
            let clip = Clip { id, rate, samples: Arc::from(samples), plays: Some(1), duck: true };
            self.engine.play(partner, clip, true).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(length)
        }
        .await;
        let injection_ms = millis(injected.elapsed());
        match result {
            Ok(length) => {
                voice.put((partner, monotonic() + length));
                metrics::histogram!("bond_speech_stage_seconds", "stage" => "injection")
                    .record(injection_ms as f64 / 1000.0);
                let data = json!({
                    "translation": text,
                    "language": language,
                    "duration_ms": millis(length),
                    "latency_ms": {
                        "tts": tts_ms,
                        "injection": injection_ms,
                        "total": millis(speech_ended.elapsed()),
                    },
                });
                self.speech_event(call, "call.translation.spoken", fields([("translation_data", data)]))
                    .await;
            }
            Err(e) => tracing::warn!(call = %call.call_control_id, error = %e, "translation not spoken"),
        }
    }
}
