//! Audio back into the call on a stream Bond sends (`streaming_start` with
//! `stream_bidirectional_mode`), as Telnyx takes it from an application
//! (../shared/reference/carrier-protocols.md, section 1): `media` frames of
//! base64 codec payload (`rtp`: 20 ms to 30 s each) or of a whole MP3 file
//! (`mp3`, Telnyx's default: at most one a second, else error 100005) are
//! decoded and queued to play to the target legs one after another; `mark` is answered once the audio sent
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

use super::mp3;

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

/// What `stream_bidirectional_*` asked for: `codec` in `rtp` mode, `None` for `mp3`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackChannel {
    pub codec: Option<Codec>,
    pub target: TargetLegs,
}

/// How a back channel's media payloads are read.
#[derive(Debug)]
enum Payloads {
    Rtp {
        decoder: Box<AudioDecoder>,
        frame: Box<AudioFrame>,
    },
    /// Whole MP3 files, and when the last one came (Telnyx takes one a second).
    Mp3 {
        last: Option<Instant>,
    },
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
    payloads: Payloads,
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
        let payloads = match channel.codec {
            Some(codec) => Payloads::Rtp {
                decoder: Box::new(codec.decoder().map_err(|e| e.to_string())?),
                frame: Box::new(AudioFrame::silent(codec.sample_rate(), 0)),
            },
            None => Payloads::Mp3 { last: None },
        };
        Ok(Self { payloads, inject, queued_until: None, marks: VecDeque::new() })
    }

    /// One text frame from the application, at `now`.
    pub async fn handle(&mut self, text: &str, now: Instant) -> Vec<Reply> {
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
                match self.decode(bytes, now).await {
                    Err(reply) => vec![reply],
                    Ok((samples, _)) if samples.is_empty() => vec![],
                    Ok((samples, rate)) => {
                        let length =
                            Duration::from_micros(samples.len() as u64 * 1_000_000 / u64::from(rate.hz()));
                        self.queued_until = Some(self.queued_until.map_or(now, |q| q.max(now)) + length);
                        let _ = self.inject.send(Inject::Play { samples, rate });
                        vec![]
                    }
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

    /// A media payload as samples and their rate, or the error to answer with.
    async fn decode(&mut self, bytes: Vec<u8>, now: Instant) -> Result<(Vec<i16>, SampleRate), Reply> {
        match &mut self.payloads {
            Payloads::Rtp { decoder, frame } => {
                let rate = decoder.codec().sample_rate();
                Ok((decode_frames(decoder, frame, &bytes).map_err(|e| invalid_media(&e))?, rate))
            }
            Payloads::Mp3 { last } => {
                if last.is_some_and(|at| now < at + Duration::from_secs(1)) {
                    return Err(Reply::Error {
                        code: 100_005,
                        title: "rate_limit_reached",
                        detail: "one MP3 file a second".into(),
                    });
                }
                *last = Some(now);
                // A file of up to a minute takes a while to decode: off the async
                // workers, which the media engines share.
                let decoded = tokio::task::spawn_blocking(move || mp3::decode(bytes))
                    .await
                    .unwrap_or_else(|e| Err(format!("the MP3 decoder failed: {e}")));
                Ok((decoded.map_err(|e| invalid_media(&e))?, mp3::MP3_RATE))
            }
        }
    }
}

/// A payload of `decoder`'s codec as samples: 20 ms frames for the fixed-rate codecs, one packet for Opus.
fn decode_frames(
    decoder: &mut AudioDecoder,
    frame: &mut AudioFrame,
    bytes: &[u8],
) -> Result<Vec<i16>, String> {
    let codec = decoder.codec();
    let per_frame = match codec {
        Codec::Opus => bytes.len().max(1),
        Codec::L16 { rate, .. } => rate.frame_samples() * 2,
        // G.711 and G.722 (64 kbit/s): 160 bytes per 20 ms.
        _ => 160,
    };
    if codec != Codec::Opus && bytes.len() % per_frame != 0 {
        return Err(format!("{} bytes are not whole 20 ms frames of {}", bytes.len(), codec.encoding_name()));
    }
    let mut samples = Vec::new();
    for chunk in bytes.chunks(per_frame) {
        decoder.decode(chunk, frame).map_err(|e| e.to_string())?;
        samples.extend_from_slice(frame.samples());
    }
    Ok(samples)
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
        let channel = BackChannel { codec: Some(Codec::Pcmu), target: TargetLegs::Own };
        (Back::new(channel, tx).unwrap(), rx)
    }

    fn media(bytes: usize) -> String {
        json!({ "event": "media", "media": { "payload": BASE64.encode(vec![0xffu8; bytes]) } }).to_string()
    }

    #[tokio::test]
    async fn media_plays_in_turn_and_a_mark_is_answered_when_the_audio_before_it_has_played() {
        let (mut back, mut played) = back();
        let t0 = crate::clock::monotonic();
        assert_eq!(back.handle(&media(8_000), t0).await, vec![], "1 s of PCMU");
        assert_eq!(back.handle(&media(160), t0).await, vec![], "and 20 ms more");
        let Ok(Inject::Play { samples, rate }) = played.try_recv() else { panic!("nothing to play") };
        assert_eq!((samples.len(), rate), (8_000, SampleRate::Hz8000));
        assert_eq!(back.handle(r#"{"event":"mark","mark":{"name":"after"}}"#, t0).await, vec![]);
        assert_eq!(back.next_due(), Some(t0 + Duration::from_millis(1_020)));
        assert_eq!(back.due(t0 + Duration::from_millis(1_000)), vec![]);
        assert_eq!(back.due(t0 + Duration::from_millis(1_020)), vec![Reply::Mark("after".into())]);
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            back.handle(r#"{"event":"mark","mark":{"name":"now"}}"#, later).await,
            vec![Reply::Mark("now".into())],
            "nothing queued"
        );
    }

    #[tokio::test]
    async fn clear_drops_the_queue_and_answers_every_pending_mark_at_once() {
        let (mut back, mut played) = back();
        let t0 = crate::clock::monotonic();
        back.handle(&media(1_600), t0).await;
        back.handle(r#"{"event":"mark","mark":{"name":"a"}}"#, t0).await;
        back.handle(r#"{"event":"mark","mark":{"name":"b"}}"#, t0).await;
        assert_eq!(
            back.handle(r#"{"event":"clear"}"#, t0).await,
            vec![Reply::Mark("a".into()), Reply::Mark("b".into())]
        );
        assert!(matches!(played.try_recv(), Ok(Inject::Play { .. })));
        assert_eq!(played.try_recv(), Ok(Inject::Clear));
        assert_eq!(back.next_due(), None);
    }

    #[tokio::test]
    async fn bad_frames_get_telnyx_error_codes_and_change_nothing() {
        let (mut back, mut played) = back();
        let now = crate::clock::monotonic();
        let code = |replies: Vec<Reply>| match replies.as_slice() {
            [Reply::Error { code, .. }] => *code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(back.handle("{nope", now).await), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"dance"}"#, now).await), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"media","media":{"payload":"%%%"}}"#, now).await), 100_004);
        assert_eq!(code(back.handle(&media(100), now).await), 100_004, "not whole 20 ms frames");
        assert!(played.try_recv().is_err());
        let frame = Reply::Error { code: 100_004, title: "invalid_media", detail: "x".into() }
            .frame("s1", "7".into());
        assert_eq!(frame["payload"]["code"], 100_004);
        assert_eq!(frame["sequence_number"], "7");
    }
    #[tokio::test]
    async fn in_mp3_mode_a_file_that_does_not_decode_is_100004_and_a_second_within_a_second_100005() {
        let (tx, mut played) = mpsc::unbounded_channel();
        let channel = BackChannel { codec: None, target: TargetLegs::Own };
        let mut back = Back::new(channel, tx).unwrap();
        let code = |replies: Vec<Reply>| match replies.as_slice() {
            [Reply::Error { code, .. }] => *code,
            other => panic!("{other:?}"),
        };
        let t0 = crate::clock::monotonic();
        assert_eq!(code(back.handle(&media(400), t0).await), 100_004, "0xFF bytes are no MP3 file");
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(code(back.handle(&media(400), soon).await), 100_005, "one file a second");
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(code(back.handle(&media(400), later).await), 100_004, "a second on: read again");
        assert!(played.try_recv().is_err(), "nothing played");
    }
}
