//! What a callee's greeting says, for answering-machine detection: the
//! detector hands out the greeting at each pause
//! (`EngineEvent::MachineDetectionWordsWanted`), the call's speech-to-text
//! engines transcribe it, and the text goes back to the detector, which
//! decides a machine on a voicemail's, carrier's or menu's phrase.
//!
//! Nothing here holds the media path or a call's transcription up: each
//! greeting is transcribed on its own task, and only when the recognizer asked
//! first has nothing else to do (live translation and voice agents go first; a
//! cloud recognizer is always free). A greeting that is not transcribed, for
//! that or because the recognizer failed, is counted
//! (`bond_amd_words_failed_total`) and the verdict falls to timing, as
//! without a recognizer; the detector never waits for words.

use std::sync::Arc;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use bond_media_engine::LegId;
use bond_store::clock::monotonic;

use crate::service::CallService;

impl CallService {
    /// Transcribe `greeting` (PCM at `rate`, in `language`) and hand the words
    /// back to the detector on `leg`.
    pub(super) fn amd_words_wanted(
        &self,
        leg: LegId,
        greeting: Arc<[i16]>,
        rate: SampleRate,
        language: &str,
    ) {
        let Ok(engines) = self.speech.clone() else { return };
        metrics::counter!("bond_amd_words_asked_total").increment(1);
        if !engines.stt.first_engine(None).is_some_and(|(_, idle)| idle) {
            metrics::counter!("bond_amd_words_failed_total").increment(1);
            return;
        }
        let (engine, language) = (self.engine.clone(), language.to_owned());
        tokio::spawn(async move {
            let audio = match resample_clip(&greeting, rate.hz(), SampleRate::Hz16000) {
                Ok(audio) => audio,
                Err(e) => {
                    tracing::warn!(error = %e, "greeting not resampled for its words");
                    return;
                }
            };
            let text = match engines.stt.transcribe(audio, &language, None, monotonic()).await {
                Ok(transcript) => transcript.text,
                Err(e) => {
                    metrics::counter!("bond_amd_words_failed_total").increment(1);
                    tracing::debug!(error = %e, "a greeting's words were not transcribed; timing decides");
                    String::new()
                }
            };
            // Detection may have ended meanwhile; then the words come too late to matter.
            let _ = engine.amd_heard_words(leg, text).await;
        });
    }
}
