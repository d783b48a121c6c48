//! What a call's speech task is asked to do: which sides are transcribed, in
//! which language, and what is translated; the actions change it while the
//! task runs (`super`).

/// Which side of the call to transcribe (Telnyx `transcription_tracks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracks {
    Inbound,
    Outbound,
    Both,
}

/// The two sides of a leg's audio: what its party says and what it hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Inbound,
    Outbound,
}

impl Side {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Side::Inbound => "inbound",
            Side::Outbound => "outbound",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptionRequest {
    /// An engine to try first (`transcription_engine`), else the configured order.
    pub engine: Option<String>,
    pub tracks: Tracks,
    pub language: String,
    /// Also report what is being said so far (`is_final: false`), every second.
    pub interim_results: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationRequest {
    /// The call's party speaks `from`; the translation is in `to`.
    pub from: String,
    pub to: String,
    /// Speak the translation into the bridged call.
    pub voice_to_voice: bool,
}

/// What a call's speech task does; the actions change it while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeechSettings {
    pub transcription: Option<TranscriptionRequest>,
    pub translation: Option<TranslationRequest>,
    /// A speech gather listens to the party, in this language (`gather/`).
    pub gather: Option<String>,
    /// A voice agent listens to the party, in this language (`assistant/`).
    pub assistant: Option<String>,
}

impl SpeechSettings {
    /// Whether `side`'s audio is listened to at all.
    pub(super) fn wants(&self, side: Side) -> bool {
        self.wants_transcript(side)
            || (side == Side::Inbound
                && (self.translation.is_some() || self.gather.is_some() || self.assistant.is_some()))
    }

    /// Whether a transcript of `side` is reported as `call.transcription`.
    pub(super) fn wants_transcript(&self, side: Side) -> bool {
        self.transcription.as_ref().is_some_and(|t| match t.tracks {
            Tracks::Both => true,
            Tracks::Inbound => side == Side::Inbound,
            Tracks::Outbound => side == Side::Outbound,
        })
    }

    /// Whether interim transcripts of `side` are reported too.
    pub(super) fn wants_interim(&self, side: Side) -> bool {
        self.wants_transcript(side) && self.transcription.as_ref().is_some_and(|t| t.interim_results)
    }

    pub(super) fn is_idle(&self) -> bool {
        self.transcription.is_none()
            && self.translation.is_none()
            && self.gather.is_none()
            && self.assistant.is_none()
    }

    /// The language the side speaks: translation's `from` for the party, else
    /// transcription's, else a voice agent's, else a speech gather's.
    pub(super) fn language(&self, side: Side) -> String {
        match (&self.translation, &self.transcription) {
            (Some(t), _) if side == Side::Inbound => t.from.clone(),
            (_, Some(t)) => t.language.clone(),
            (Some(t), None) => t.from.clone(),
            (None, None) => {
                self.assistant.clone().or_else(|| self.gather.clone()).unwrap_or_else(|| "en".into())
            }
        }
    }
}
