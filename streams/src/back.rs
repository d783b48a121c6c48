//! Audio back into the call on a stream Bond sends (`streaming_start` with
//! `stream_bidirectional_mode`), as Telnyx takes it from an application
//! (Telnyx's media-streaming documentation): `media` frames of base64 codec
//! payload (`rtp`: any whole number of samples, up to 30 s each, played back
//! to back without a gap; G.722 bytes short of a 20 ms frame wait for the
//! next payload) or of a whole MP3 file
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

/// Who hears the audio (Telnyx `stream_bidirectional_target_legs`). As on
/// Telnyx, an application streaming a call that is not bridged is heard by
/// the call's party whatever it asks for (`opposite`, the default, included);
/// on a bridged call `opposite` is the other call's party, `self` the
/// streamed call's, `both` both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetLegs {
    /// The streamed call's own party.
    Own,
    /// The party of the call bridged with it (the call's own when there is none).
    Opposite,
    Both,
}

impl TargetLegs {
    /// The legs that hear the audio: `own` is the streamed call's leg,
    /// `partner` the leg of the call bridged with it, if any.
    pub fn legs<L: Copy>(self, own: L, partner: Option<L>) -> Vec<L> {
        match (self, partner) {
            (Self::Opposite, Some(partner)) => vec![partner],
            (Self::Both, Some(partner)) => vec![own, partner],
            _ => vec![own],
        }
    }
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
        frame: AudioFrame,
        /// Bytes short of a sample (L16) or of a frame (G.722), for the next payload.
        carry: Vec<u8>,
    },
    /// Whole MP3 files, and when the last one came (Telnyx takes one a second).
    Mp3 { last: Option<Instant> },
}

/// What the stream asks the call side to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Inject {
    Play { samples: Vec<i16>, rate: SampleRate },
    Clear,
}

impl Inject {
    /// `batch` in order, each run of plays at one rate joined into one: audio
    /// an application sent in a burst is queued on the leg at once, so the time
    /// queueing each piece takes on a busy machine cannot open a gap between them.
    pub fn joined(batch: impl IntoIterator<Item = Inject>) -> Vec<Inject> {
        let mut out: Vec<Inject> = Vec::new();
        for inject in batch {
            match (out.last_mut(), inject) {
                (Some(Inject::Play { samples, rate }), Inject::Play { samples: more, rate: more_rate })
                    if *rate == more_rate =>
                {
                    samples.extend(more);
                }
                (_, inject) => out.push(inject),
            }
        }
        out
    }
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
                frame: AudioFrame::silent(codec.sample_rate(), 0),
                carry: Vec::new(),
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
            Payloads::Rtp { decoder, frame, carry } => {
                let rate = decoder.codec().sample_rate();
                Ok((decode_payload(decoder, frame, carry, &bytes).map_err(|e| invalid_media(&e))?, rate))
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

/// The most audio one `media` frame may carry (Telnyx: 30 s).
const LONGEST_PAYLOAD: Duration = Duration::from_secs(30);

/// A payload of `decoder`'s codec as samples: any whole number of G.711 or
/// L16 samples, G.722 in whole 20 ms frames (the rest waits in `carry`), one
/// Opus packet.
fn decode_payload(
    decoder: &mut AudioDecoder,
    frame: &mut AudioFrame,
    carry: &mut Vec<u8>,
    bytes: &[u8],
) -> Result<Vec<i16>, String> {
    let codec = decoder.codec();
    let rate = u128::from(codec.sample_rate().hz());
    let samples_in = match codec {
        Codec::L16 { .. } => (carry.len() + bytes.len()) / 2,
        Codec::G722 => (carry.len() + bytes.len()) * 2,
        _ => bytes.len(),
    };
    if samples_in as u128 * 1000 > LONGEST_PAYLOAD.as_millis() * rate {
        return Err(format!("a media payload carries at most {} s", LONGEST_PAYLOAD.as_secs()));
    }
    match codec {
        Codec::Pcmu | Codec::Pcma => {
            let mut samples = vec![0; bytes.len()];
            if codec == Codec::Pcmu {
                bond_codecs::g711::ulaw_decode_slice(bytes, &mut samples);
            } else {
                bond_codecs::g711::alaw_decode_slice(bytes, &mut samples);
            }
            Ok(samples)
        }
        Codec::L16 { order, .. } => {
            carry.extend_from_slice(bytes);
            let whole = carry.len() / 2 * 2;
            let samples = carry[..whole]
                .chunks_exact(2)
                .map(|pair| match order {
                    bond_codecs::l16::ByteOrder::BigEndian => i16::from_be_bytes([pair[0], pair[1]]),
                    bond_codecs::l16::ByteOrder::LittleEndian => i16::from_le_bytes([pair[0], pair[1]]),
                })
                .collect();
            carry.drain(..whole);
            Ok(samples)
        }
        Codec::Opus => {
            decoder.decode(bytes, frame).map_err(|e| e.to_string())?;
            Ok(frame.samples().to_vec())
        }
        // G.722 at 64 kbit/s: 160 bytes a 20 ms frame.
        _ => {
            carry.extend_from_slice(bytes);
            let whole = carry.len() / 160 * 160;
            let mut samples = Vec::with_capacity(whole * 2);
            for chunk in carry[..whole].chunks(160) {
                decoder.decode(chunk, frame).map_err(|e| e.to_string())?;
                samples.extend_from_slice(frame.samples());
            }
            carry.drain(..whole);
            Ok(samples)
        }
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
        let channel = BackChannel { codec: Some(Codec::Pcmu), target: TargetLegs::Own };
        (Back::new(channel, tx).unwrap(), rx)
    }

    fn media(bytes: usize) -> String {
        json!({ "event": "media", "media": { "payload": BASE64.encode(vec![0xffu8; bytes]) } }).to_string()
    }

    #[tokio::test]
    async fn media_plays_in_turn_and_a_mark_is_answered_when_the_audio_before_it_has_played() {
        let (mut back, mut played) = back();
        let t0 = bond_store::clock::monotonic();
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
        let t0 = bond_store::clock::monotonic();
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
        let now = bond_store::clock::monotonic();
        let code = |replies: Vec<Reply>| match replies.as_slice() {
            [Reply::Error { code, .. }] => *code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(back.handle("{nope", now).await), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"dance"}"#, now).await), 100_003);
        assert_eq!(code(back.handle(r#"{"event":"media","media":{"payload":"%%%"}}"#, now).await), 100_004);
        assert!(played.try_recv().is_err());
        let frame = Reply::Error { code: 100_004, title: "invalid_media", detail: "x".into() }
            .frame("s1", "7".into());
        assert_eq!(frame["payload"]["code"], 100_004);
        assert_eq!(frame["sequence_number"], "7");
    }
    #[tokio::test]
    async fn payloads_of_any_whole_number_of_samples_are_played_back_to_back() {
        let (mut back, mut played) = back();
        let now = bond_store::clock::monotonic();
        // 1,100 bytes of PCMU (137.5 ms), as a resampling client sends them, then 7 bytes.
        for bytes in [1_100, 7] {
            assert_eq!(back.handle(&media(bytes), now).await, vec![]);
            let Ok(Inject::Play { samples, .. }) = played.try_recv() else { panic!("nothing to play") };
            assert_eq!(samples.len(), bytes);
        }
        assert_eq!(back.handle(r#"{"event":"mark","mark":{"name":"m"}}"#, now).await, vec![]);
        assert_eq!(back.next_due(), Some(now + Duration::from_micros(1_107 * 125)), "queued back to back");
        let code = |replies: Vec<Reply>| match replies.as_slice() {
            [Reply::Error { code, .. }] => *code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(back.handle(&media(8_000 * 31), now).await), 100_004, "over 30 s");
    }

    #[test]
    fn g722_bytes_short_of_a_frame_wait_for_the_next_payload_and_l16_for_the_next_byte() {
        let mut carry = Vec::new();
        let mut decoder = Codec::G722.decoder().unwrap();
        let mut frame = AudioFrame::silent(SampleRate::Hz16000, 0);
        assert_eq!(decode_payload(&mut decoder, &mut frame, &mut carry, &[0u8; 250]).unwrap().len(), 320);
        assert_eq!(carry.len(), 90);
        assert_eq!(decode_payload(&mut decoder, &mut frame, &mut carry, &[0u8; 70]).unwrap().len(), 320);
        assert!(carry.is_empty());
        let l16 = Codec::L16 { rate: SampleRate::Hz16000, order: bond_codecs::l16::ByteOrder::BigEndian };
        let mut decoder = l16.decoder().unwrap();
        assert_eq!(
            decode_payload(&mut decoder, &mut frame, &mut carry, &[0x01, 0x02, 0x03]).unwrap(),
            vec![0x0102]
        );
        assert_eq!(decode_payload(&mut decoder, &mut frame, &mut carry, &[0x04]).unwrap(), vec![0x0304]);
    }

    #[test]
    fn an_unbridged_call_hears_its_stream_whatever_the_target_legs() {
        for target in [TargetLegs::Own, TargetLegs::Opposite, TargetLegs::Both] {
            assert_eq!(target.legs(1, None), vec![1], "{target:?}");
        }
        assert_eq!(TargetLegs::Opposite.legs(1, Some(2)), vec![2]);
        assert_eq!(TargetLegs::Own.legs(1, Some(2)), vec![1]);
        assert_eq!(TargetLegs::Both.legs(1, Some(2)), vec![1, 2]);
    }

    #[test]
    fn a_burst_of_plays_at_one_rate_is_one_clip_and_a_clear_keeps_its_place() {
        let play = |samples: &[i16], rate| Inject::Play { samples: samples.to_vec(), rate };
        let (narrow, wide) = (SampleRate::Hz8000, SampleRate::Hz16000);
        let batch = [
            play(&[1, 2], narrow),
            play(&[3], narrow),
            play(&[4], wide),
            Inject::Clear,
            play(&[5], wide),
            play(&[6], wide),
        ];
        assert_eq!(
            Inject::joined(batch),
            vec![play(&[1, 2, 3], narrow), play(&[4], wide), Inject::Clear, play(&[5, 6], wide)]
        );
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
        let t0 = bond_store::clock::monotonic();
        assert_eq!(code(back.handle(&media(400), t0).await), 100_004, "0xFF bytes are no MP3 file");
        let soon = t0 + Duration::from_millis(500);
        assert_eq!(code(back.handle(&media(400), soon).await), 100_005, "one file a second");
        let later = t0 + Duration::from_millis(1_000);
        assert_eq!(code(back.handle(&media(400), later).await), 100_004, "a second on: read again");
        assert!(played.try_recv().is_err(), "nothing played");
    }
}
