//! Audio back into the call on a stream Bond sends (`streaming_start` with
//! `stream_bidirectional_mode: "rtp"`), as Telnyx takes it from an application
//! (../shared/reference/carrier-protocols.md, section 1): `media` frames of
//! base64 codec payload (20 ms to 30 s each) are decoded and queued to play to
//! the target legs one after another; `mark` is answered once the audio sent
//! before it has played; `clear` drops what has not played and answers every
//! pending mark at once. A frame that is not JSON gets Telnyx's `error` 100003,
//! a payload that is not base64 (or not the codec) 100004; the stream goes on.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bond_codecs::codec::AudioDecoder;
use bond_codecs::{AudioFrame, Codec, SampleRate};
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Who hears the audio (Telnyx `stream_bidirectional_target_legs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetLegs {
    /// The streamed call's own party.
    Own,
    /// The party of the call bridged with it.
    Opposite,
    Both,
}

impl TargetLegs {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "self" => Some(Self::Own),
            "opposite" => Some(Self::Opposite),
            "both" => Some(Self::Both),
            _ => None,
        }
    }
}

/// What `stream_bidirectional_*` asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackChannel {
    pub codec: Codec,
    pub target: TargetLegs,
}

/// What the stream asks the call side to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Inject {
    Play { samples: Vec<i16>, rate: SampleRate },
    Clear,
}

/// The receiving side of one stream's back channel.
#[derive(Debug)]
pub struct Back {
    decoder: AudioDecoder,
    frame: AudioFrame,
    inject: mpsc::UnboundedSender<Inject>,
    /// When the audio queued so far will have played.
    queued_until: Option<Instant>,
    /// Marks waiting for their audio: (due, name), in order.
    marks: VecDeque<(Instant, String)>,
}

/// What Bond answers the application with.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Mark(String),
    Error { code: u32, title: &'static str, detail: String },
}

impl Back {
    pub fn new(channel: BackChannel, inject: mpsc::UnboundedSender<Inject>) -> Result<Self, String> {
        let decoder = channel.codec.decoder().map_err(|e| e.to_string())?;
        let frame = AudioFrame::silent(channel.codec.sample_rate(), 0);
        Ok(Self { decoder, frame, inject, queued_until: None, marks: VecDeque::new() })
    }

    /// One text frame from the application, at `now`.
    pub fn handle(&mut self, text: &str, now: Instant) -> Vec<Reply> {
        let Ok(frame) = serde_json::from_str::<Value>(text) else {
            return vec![malformed("the frame is not JSON")];
        };
        match frame["event"].as_str() {
            Some("media") => {
                let Some(payload) = frame["media"]["payload"].as_str() else {
                    return vec![malformed("a media frame needs media.payload")];
                };
                let Ok(bytes) = BASE64.decode(payload) else {
                    return vec![invalid_media("media.payload is not base64")];
                };
                match self.decode(&bytes) {
                    Ok(samples) if samples.is_empty() => vec![],
                    Ok(samples) => {
                        let rate = self.decoder.codec().sample_rate();
                        let length =
                            Duration::from_micros(samples.len() as u64 * 1_000_000 / u64::from(rate.hz()));
                        self.queued_until = Some(self.queued_until.map_or(now, |q| q.max(now)) + length);
                        let _ = self.inject.send(Inject::Play { samples, rate });
                        vec![]
                    }
                    Err(e) => vec![invalid_media(&e)],
                }
            }
            Some("mark") => match frame["mark"]["name"].as_str() {
                Some(name) => match self.queued_until.filter(|q| *q > now) {
                    Some(due) => {
                        self.marks.push_back((due, name.to_owned()));
                        vec![]
                    }
                    None => vec![Reply::Mark(name.to_owned())],
                },
                None => vec![malformed("a mark frame needs mark.name")],
            },
            Some("clear") => {
                let _ = self.inject.send(Inject::Clear);
                self.queued_until = None;
                self.marks.drain(..).map(|(_, name)| Reply::Mark(name)).collect()
            }
            _ => vec![malformed("event must be media, mark or clear")],
        }
    }

    /// When the next pending mark is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.marks.front().map(|(due, _)| *due)
    }

    /// Marks whose audio has played by `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Reply> {
        let mut out = Vec::new();
        while self.marks.front().is_some_and(|(due, _)| *due <= now) {
            out.extend(self.marks.pop_front().map(|(_, name)| Reply::Mark(name)));
        }
        out
    }

    /// The payload as samples: 20 ms frames for the fixed-rate codecs, one packet for Opus.
    fn decode(&mut self, bytes: &[u8]) -> Result<Vec<i16>, String> {
        let codec = self.decoder.codec();
        let per_frame = match codec {
            Codec::Opus => bytes.len().max(1),
            Codec::L16 { rate, .. } => rate.frame_samples() * 2,
            // G.711 and G.722 (64 kbit/s): 160 bytes per 20 ms.
            _ => 160,
        };
        if codec != Codec::Opus && bytes.len() % per_frame != 0 {
            return Err(format!(
                "{} bytes are not whole 20 ms frames of {}",
                bytes.len(),
                codec.encoding_name()
            ));
        }
        let mut samples = Vec::new();
        for chunk in bytes.chunks(per_frame) {
            self.decoder.decode(chunk, &mut self.frame).map_err(|e| e.to_string())?;
            samples.extend_from_slice(self.frame.samples());
        }
        Ok(samples)
    }
}

fn malformed(detail: &str) -> Reply {
    Reply::Error { code: 100_003, title: "malformed_frame", detail: detail.to_owned() }
}

fn invalid_media(detail: &str) -> Reply {
    Reply::Error { code: 100_004, title: "invalid_media", detail: detail.to_owned() }
}

impl Reply {
    /// As Telnyx's frame on this stream.
    pub fn frame(&self, stream_id: &str, sequence_number: String) -> Value {
        match self {
            Reply::Mark(name) => json!({
                "event": "mark", "stream_id": stream_id, "sequence_number": sequence_number, "mark": { "name": name },
            }),
            Reply::Error { code, title, detail } => json!({
                "event": "error", "stream_id": stream_id, "sequence_number": sequence_number,
                "payload": { "code": code, "title": title, "detail": detail },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn back() -> (Back, mpsc::UnboundedReceiver<Inject>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let channel = BackChannel { codec: Codec::Pcmu, target: TargetLegs::Own };
        (Back::new(channel, tx).unwrap(), rx)
    }

    fn media(bytes: usize) -> String {
        json!({ "event": "media", "media": { "payload": BASE64.encode(vec![0xffu8; bytes]) } }).to_string()
    }

    #[test]
    fn media_plays_in_turn_and_a_mark_is_answered_when_the_audio_before_it_has_played() {
        let (mut back, mut played) = back();
        let t0 = crate::clock::monotonic();
        assert_eq!(back.handle(&media(8_000), t0), vec![], "1 s of PCMU");
        assert_eq!(back.handle(&media(160), t0), vec![], "and 20 ms more");
        let Ok(Inject::Play { samples, rate }) = played.try_recv() else { panic!("nothing to play") };
        assert_eq!((samples.len(), rate), (8_000, SampleRate::Hz8000));
        assert_eq!(back.handle(r#"{"event":"mark","mark":{"name":"after"}}"#, t0), vec![]);
        assert_eq!(back.next_due(), Some(t0 + Duration::from_millis(1_020)));
        assert_eq!(back.due(t0 + Duration::from_millis(1_000)), vec![]);
        assert_eq!(back.due(t0 + Duration::from_millis(1_020)), vec![Reply::Mark("after".into())]);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            back.handle(r#"{"event":"mark","mark":{"name":"now"}}"#, later),
            vec![Reply::Mark("now".into())],
            "nothing queued"
        );
    }

    #[test]
    fn clear_drops_the_queue_and_answers_every_pending_mark_at_once() {
        let (mut back, mut played) = back();
        let t0 = crate::clock::monotonic();
        back.handle(&media(1_600), t0);
        back.handle(r#"{"event":"mark","mark":{"name":"a"}}"#, t0);
        back.handle(r#"{"event":"mark","mark":{"name":"b"}}"#, t0);
        assert_eq!(
            back.handle(r#"{"event":"clear"}"#, t0),
            vec![Reply::Mark("a".into()), Reply::Mark("b".into())]
        );
        assert!(matches!(played.try_recv(), Ok(Inject::Play { .. })));
        assert_eq!(played.try_recv(), Ok(Inject::Clear));
        assert_eq!(back.next_due(), None);
    }

    #[test]
    fn bad_frames_get_telnyx_error_codes_and_change_nothing() {
        let (mut back, mut played) = back();
        let now = crate::clock::monotonic();
        let code = |replies: Vec<Reply>| match replies.as_slice() {
            [Reply::Error { code, .. }] => *code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(back.handle("{nope", now)), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"dance"}"#, now)), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"media","media":{"payload":"%%%"}}"#, now)), 100_004);
        assert_eq!(code(back.handle(&media(100), now)), 100_004, "not whole 20 ms frames");
        assert!(played.try_recv().is_err());
        let frame = Reply::Error { code: 100_004, title: "invalid_media", detail: "x".into() }
            .frame("s1", "7".into());
        assert_eq!(frame["payload"]["code"], 100_004);
        assert_eq!(frame["sequence_number"], "7");
    }
}
