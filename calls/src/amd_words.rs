//! What a callee's greeting says, for answering-machine detection: the
//! detector hands out the greeting at each pause
//! (`EngineEvent::MachineDetectionWordsWanted`), the call's speech-to-text
//! engines transcribe it, and the text goes back to the detector, which
//! decides a machine on a voicemail's, carrier's or menu's phrase.
//!
//! Nothing here holds the media path or a call's transcription up: a greeting
//! is transcribed on its own task, one at a time on a node, and only when the
//! recognizer asked first has nothing else to do (live translation and voice
//! agents go first; a cloud recognizer is always free); an answer not back
//! within `WORDS_DEADLINE` is let go, too late to matter and before the
//! recognizer's own deadline would count it a failure against translation.
//! A greeting that is not transcribed, for any of these reasons or because
//! the recognizer failed, is counted (`bond_amd_words_failed_total`) and the
//! verdict falls to timing, as without a recognizer; the detector never waits
//! for words.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bond_codecs::resample::resample_clip;
use bond_codecs::SampleRate;
use bond_media_engine::LegId;
use bond_store::clock::monotonic;

use crate::service::CallService;

/// Words later than this come after the pause made a person anyway.
const WORDS_DEADLINE: Duration = Duration::from_secs(2);

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
        let idle = engines.stt.first_engine(None).is_some_and(|(_, idle)| idle);
        if !idle || self.amd_words_busy.swap(true, Ordering::AcqRel) {
            metrics::counter!("bond_amd_words_failed_total").increment(1);
            return;
        }
        let (engine, language, busy) =
            (self.engine.clone(), language.to_owned(), self.amd_words_busy.clone());
        tokio::spawn(async move {
            let audio = resample_clip(&greeting, rate.hz(), SampleRate::Hz16000);
            let text = match audio {
                Ok(audio) => {
                    let asked = engines.stt.transcribe(audio, &language, None, monotonic());
                    tokio::time::timeout(WORDS_DEADLINE, asked)
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .map(|t| t.text)
                }
                Err(_) => None,
            };
            busy.store(false, Ordering::Release);
            if text.is_none() {
                metrics::counter!("bond_amd_words_failed_total").increment(1);
            }
            // Detection may have ended meanwhile; then the words come too late to matter.
            let _ = engine.amd_heard_words(leg, text.unwrap_or_default()).await;
        });
    }
}
