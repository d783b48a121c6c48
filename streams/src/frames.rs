//! The JSON frames of Telnyx Media Streaming and Twilio Media Streams
//! (Telnyx's media-streaming documentation and Twilio's Media Streams WebSocket
//! messages, both published), parsed into one
//! shape. Counters may be strings or numbers; both carriers' spellings are
//! accepted (`sequence_number`/`sequenceNumber`, `media_format`/`mediaFormat`, ...).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bond_codecs::l16::ByteOrder;
use bond_codecs::{Codec, SampleRate};
use serde_json::{json, Value};

mod media_fast;

/// Which carrier's dialect a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    Telnyx,
    Twilio,
}

impl Carrier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Telnyx => "telnyx",
            Self::Twilio => "twilio",
        }
    }
}

/// The `start` frame: who the stream belongs to and its audio format.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    pub stream_id: String,
    /// Telnyx `call_control_id`, Twilio `callSid`.
    pub carrier_call_id: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub encoding: String,
    pub sample_rate: u32,
    pub custom_parameters: Value,
    pub client_state: Option<String>,
}

/// A frame from the carrier.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Connected { token: Option<String> },
    Start(Start),
    Media { chunk: Option<u64>, sequence: Option<u64>, track: Option<String>, payload: Vec<u8> },
    Stop,
    Dtmf(char),
    Mark(String),
    Clear,
    Error { code: String, title: String, detail: String },
}

/// Why a frame was refused; Telnyx's error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// 100003: not JSON, or not a frame Bond knows.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// 100004: a media payload that is not base64.
    #[error("invalid media: the payload is not base64")]
    InvalidMedia,
}

impl FrameError {
    pub fn code(&self) -> u32 {
        match self {
            Self::Malformed(_) => 100_003,
            Self::InvalidMedia => 100_004,
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_frame",
            Self::InvalidMedia => "invalid_media",
        }
    }
}

/// A counter sent as a string or a number.
fn counter(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of `names` present in `v`.
fn field<'a>(v: &'a Value, names: &[&str]) -> &'a Value {
    names.iter().map(|n| &v[*n]).find(|f| !f.is_null()).unwrap_or(&Value::Null)
}

pub fn parse(frame: &str) -> Result<Inbound, FrameError> {
    media_fast::parse(frame).unwrap_or_else(|| parse_tree(frame))
}

/// The full way: any frame, read as a JSON tree.
fn parse_tree(frame: &str) -> Result<Inbound, FrameError> {
    let v: Value =
        serde_json::from_str(frame).map_err(|e| FrameError::Malformed(format!("not JSON: {e}")))?;
    let malformed = |what: &str| FrameError::Malformed(what.to_owned());
    let event = v["event"].as_str().ok_or_else(|| malformed("no 'event'"))?;
    Ok(match event {
        "connected" => Inbound::Connected {
            token: ["stream_auth_token", "auth_token", "token"].iter().find_map(|k| text(&v[*k])),
        },
        "start" => {
            let start = &v["start"];
            if !start.is_object() {
                return Err(malformed("start without a 'start' object"));
            }
            let format = field(start, &["media_format", "mediaFormat"]);
            Inbound::Start(Start {
                stream_id: text(field(&v, &["stream_id", "streamSid"]))
                    .or_else(|| text(field(start, &["stream_id", "streamSid"])))
                    .ok_or_else(|| malformed("start without a stream id"))?,
                carrier_call_id: text(field(start, &["call_control_id", "callSid"]))
                    .ok_or_else(|| malformed("start without call_control_id or callSid"))?,
                from: text(&start["from"]),
                to: text(&start["to"]),
                encoding: text(&format["encoding"]).unwrap_or_else(|| "PCMU".into()),
                sample_rate: counter(field(format, &["sample_rate", "sampleRate"])).unwrap_or(8_000) as u32,
                custom_parameters: field(start, &["custom_parameters", "customParameters"]).clone(),
                client_state: text(&start["client_state"]),
            })
        }
        "media" => {
            let media = &v["media"];
            let payload = media["payload"].as_str().ok_or_else(|| malformed("media without a payload"))?;
            Inbound::Media {
                chunk: counter(&media["chunk"]),
                sequence: counter(field(&v, &["sequence_number", "sequenceNumber"])),
                track: text(&media["track"]),
                payload: BASE64.decode(payload).map_err(|_| FrameError::InvalidMedia)?,
            }
        }
        "stop" => Inbound::Stop,
        "dtmf" => {
            let digit = text(&v["dtmf"]["digit"]).ok_or_else(|| malformed("dtmf without a digit"))?;
            let mut chars = digit.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Inbound::Dtmf(c),
                _ => return Err(malformed("dtmf digit must be one character")),
            }
        }
        "mark" => Inbound::Mark(text(&v["mark"]["name"]).ok_or_else(|| malformed("mark without a name"))?),
        "clear" => Inbound::Clear,
        "error" => {
            // Two published shapes: `payload` or `error`, with a numeric or string code.
            let e = field(&v, &["error", "payload"]);
            Inbound::Error {
                code: text(&e["code"]).unwrap_or_default(),
                title: text(&e["title"]).unwrap_or_default(),
                detail: text(&e["detail"]).unwrap_or_default(),
            }
        }
        other => return Err(FrameError::Malformed(format!("unknown event '{other}'"))),
    })
}

/// The codec a `start` frame's format names. L16 uses `l16_order` (big-endian by default).
pub fn codec_of(start: &Start, l16_order: ByteOrder) -> Result<Codec, String> {
    let rate = || SampleRate::from_hz(start.sample_rate).map_err(|e| e.to_string());
    match start.encoding.to_ascii_uppercase().as_str() {
        "PCMU" | "AUDIO/X-MULAW" | "MULAW" => Ok(Codec::Pcmu),
        "PCMA" | "AUDIO/X-ALAW" | "ALAW" => Ok(Codec::Pcma),
        "G722" => Ok(Codec::G722),
        "OPUS" => Ok(Codec::Opus),
        "L16" | "AUDIO/L16" => match rate()? {
            r @ (SampleRate::Hz8000 | SampleRate::Hz16000) => Ok(Codec::L16 { rate: r, order: l16_order }),
            _ => Err("L16 streams must be 8000 or 16000 Hz".into()),
        },
        other => Err(format!("encoding '{other}' is not supported (PCMU, PCMA, G722, OPUS, L16)")),
    }
}

/// Writes one stream's `media` frames: Twilio's carry the `streamSid`, Telnyx's
/// do not. The part before the payload is written once per stream.
#[derive(Debug, Clone)]
pub struct MediaWriter {
    head: String,
}

const MEDIA_TAIL: &str = r#""}}"#;

impl MediaWriter {
    pub fn new(carrier: Carrier, stream_id: &str) -> Self {
        let head = match carrier {
            Carrier::Telnyx => r#"{"event":"media","media":{"payload":""#.to_owned(),
            Carrier::Twilio => {
                format!(r#"{{"event":"media","streamSid":{},"media":{{"payload":""#, json!(stream_id))
            }
        };
        Self { head }
    }

    pub fn frame(&self, payload: &[u8]) -> String {
        let mut frame =
            String::with_capacity(self.head.len() + payload.len().div_ceil(3) * 4 + MEDIA_TAIL.len());
        frame.push_str(&self.head);
        BASE64.encode_string(payload, &mut frame);
        frame.push_str(MEDIA_TAIL);
        frame
    }
}

/// Writes the `media` frames of a stream Bond sends (`streaming_start`), in
/// Telnyx's shape: sequence number, track, chunk, timestamp and payload, and
/// the stream id (escaped once, at the start).
#[derive(Debug, Clone)]
pub struct OutboundMediaWriter {
    tail: String,
}

impl OutboundMediaWriter {
    pub fn new(stream_id: &str) -> Self {
        Self { tail: format!(r#""}},"stream_id":{}}}"#, json!(stream_id)) }
    }

    /// `track` is Bond's own name (`inbound`, `outbound`): nothing in it to escape.
    pub fn frame(&self, sequence: u64, track: &str, chunk: u64, timestamp_ms: u64, payload: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut frame = String::with_capacity(120 + payload.len().div_ceil(3) * 4 + self.tail.len());
        let _ = write!(
            frame,
            r#"{{"event":"media","sequence_number":"{sequence}","media":{{"track":"{track}","chunk":"{chunk}","timestamp":"{timestamp_ms}","payload":""#
        );
        BASE64.encode_string(payload, &mut frame);
        frame.push_str(&self.tail);
        frame
    }
}

/// A mark answered.
pub fn mark(carrier: Carrier, stream_id: &str, name: &str) -> String {
    match carrier {
        Carrier::Telnyx => json!({ "event": "mark", "stream_id": stream_id, "mark": { "name": name } }),
        Carrier::Twilio => json!({ "event": "mark", "streamSid": stream_id, "mark": { "name": name } }),
    }
    .to_string()
}

/// A Telnyx `error` frame.
pub fn error(code: u32, title: &str, detail: &str) -> String {
    json!({ "event": "error", "payload": { "code": code, "title": title, "detail": detail } }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telnyx_frames_from_the_reference_parse() {
        let start = parse(
            r#"{ "event": "start", "sequence_number": "1", "stream_id": "32DE0DEA",
            "start": { "user_id": "3E6F", "call_control_id": "v2:T02l", "call_session_id": "ff55",
            "from": "+13122010094", "to": "+13122123456", "tags": ["TAG1"], "client_state": "aGF2",
            "custom_parameters": { "customer_id": "customer_123" },
            "media_format": { "encoding": "PCMA", "sample_rate": 8000, "channels": 1 } } }"#,
        )
        .unwrap();
        let Inbound::Start(s) = start else { panic!("{start:?}") };
        assert_eq!((s.stream_id.as_str(), s.carrier_call_id.as_str()), ("32DE0DEA", "v2:T02l"));
        assert_eq!(codec_of(&s, ByteOrder::BigEndian), Ok(Codec::Pcma));
        assert_eq!(s.custom_parameters["customer_id"], "customer_123");
        let media = parse(
            r#"{ "event": "media", "sequence_number": "4", "media": { "track": "inbound",
            "chunk": "2", "timestamp": "5", "payload": "AAEC" }, "stream_id": "32DE0DEA" }"#,
        )
        .unwrap();
        assert_eq!(
            media,
            Inbound::Media {
                chunk: Some(2),
                sequence: Some(4),
                track: Some("inbound".into()),
                payload: vec![0, 1, 2]
            }
        );
        assert_eq!(parse(r#"{ "event": "dtmf", "dtmf": { "digit": "1" } }"#), Ok(Inbound::Dtmf('1')));
        assert_eq!(parse(r#"{ "event": "mark", "mark": { "name": "m" } }"#), Ok(Inbound::Mark("m".into())));
        for e in [
            r#"{ "event": "error", "payload": { "code": 100002, "title": "unknown_error", "detail": "x" } }"#,
            r#"{ "event": "error", "error": { "title": "unknown_error", "code": "100002", "detail": "x" } }"#,
        ] {
            assert!(matches!(parse(e), Ok(Inbound::Error { code, .. }) if code == "100002"));
        }
    }

    #[test]
    fn twilio_spellings_parse() {
        let start = parse(
            r#"{ "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
            "start": { "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
            "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 } } }"#,
        )
        .unwrap();
        let Inbound::Start(s) = start else { panic!() };
        assert_eq!((s.stream_id.as_str(), s.carrier_call_id.as_str()), ("MZ1", "CA1"));
        assert_eq!(codec_of(&s, ByteOrder::BigEndian), Ok(Codec::Pcmu));
        let media =
            parse(r#"{ "event": "media", "sequenceNumber": 4, "media": { "chunk": 2, "payload": "" } }"#);
        assert!(matches!(media, Ok(Inbound::Media { chunk: Some(2), sequence: Some(4), .. })));
    }

    #[test]
    fn bad_frames_get_telnyx_error_codes() {
        assert_eq!(parse("{nope").unwrap_err().code(), 100_003);
        assert_eq!(parse(r#"{ "event": "teleport" }"#).unwrap_err().code(), 100_003);
        assert_eq!(parse(r#"{ "event": "media", "media": {} }"#).unwrap_err().code(), 100_003);
        assert_eq!(
            parse(r#"{ "event": "media", "media": { "payload": "%%%" } }"#),
            Err(FrameError::InvalidMedia)
        );
        let s = Start {
            stream_id: "s".into(),
            carrier_call_id: "c".into(),
            from: None,
            to: None,
            encoding: "AMR-WB".into(),
            sample_rate: 16_000,
            custom_parameters: Value::Null,
            client_state: None,
        };
        assert!(codec_of(&s, ByteOrder::BigEndian).is_err());
    }

    #[test]
    fn mangled_frames_are_errors_never_panics() {
        let valid = [
            r#"{"event":"start","stream_id":"s","start":{"call_control_id":"c","media_format":{"encoding":"L16","sample_rate":16000}}}"#,
            r#"{"event":"media","sequence_number":"4","media":{"chunk":"2","payload":"AAEC"}}"#,
            r#"{"event":"dtmf","dtmf":{"digit":"1"}}"#,
            r#"{"event":"error","error":{"code":"100002"}}"#,
        ];
        let mut rng = bond_codecs::signals::SplitMix64::new(7);
        for i in 0..20_000 {
            let mut bytes = valid[i % valid.len()].as_bytes().to_vec();
            for _ in 0..1 + rng.next_u64() % 4 {
                let at = (rng.next_u64() as usize) % bytes.len();
                match rng.next_u64() % 3 {
                    0 => bytes[at] = rng.next_u64() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b"{}[]\",:0\\"[(rng.next_u64() % 8) as usize]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            if let Ok(Inbound::Start(start)) = parse(&String::from_utf8_lossy(&bytes)) {
                let _ = codec_of(&start, ByteOrder::BigEndian);
            }
        }
    }

    #[test]
    fn outbound_frames_follow_each_carrier() {
        let t: Value = serde_json::from_str(&MediaWriter::new(Carrier::Telnyx, "s").frame(&[1, 2])).unwrap();
        assert_eq!(t, json!({ "event": "media", "media": { "payload": "AQI=" } }));
        let twilio = MediaWriter::new(Carrier::Twilio, "MZ\"1");
        let w: Value = serde_json::from_str(&twilio.frame(&[1, 2, 3, 4])).unwrap();
        assert_eq!(w, json!({ "event": "media", "streamSid": "MZ\"1", "media": { "payload": "AQIDBA==" } }));
        let empty: Value = serde_json::from_str(&twilio.frame(&[])).unwrap();
        assert_eq!(empty["media"]["payload"], "");
    }

    #[test]
    fn media_frames_read_the_same_on_the_fast_path_and_the_full_one() {
        let frames = [
            r#"{"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"AAEC"},"stream_id":"s"}"#,
            r#"{"event":"media","sequenceNumber":4,"media":{"chunk":2,"payload":"AAEC"},"streamSid":"MZ1"}"#,
            r#"{"event":"me\u0064ia","media":{"track":"out\u0062ound","chunk":-3,"payload":"AA\u003d\u003d"}}"#,
            r#"{"event":"media","sequence_number":"x","media":{"chunk":2.5,"payload":""}}"#,
            r#"{"media":{"payload":"AAEC"},"event":"media","sequence_number":null}"#,
        ];
        for frame in frames {
            let fast = media_fast::parse(frame).expect(frame);
            assert!(matches!(fast, Ok(Inbound::Media { .. })), "{frame}");
            assert_eq!(fast, parse_tree(frame), "{frame}");
        }
    }

    #[test]
    fn what_the_fast_path_cannot_read_goes_the_full_way() {
        for frame in [
            r#"{"event":"start","start":{}}"#,
            r#"{"event":"media","media":{"payload":"AAEC","track":7}}"#,
            r#"{"event":"media","media":{}}"#,
            r#"{"event":"media","sequence_number":"1","sequenceNumber":"2","media":{"payload":""}}"#,
            r#"{"event":"media","media":{"chunk":{"n":1},"payload":""}}"#,
            "{nope",
        ] {
            assert_eq!(media_fast::parse(frame), None, "{frame}");
        }
        assert!(matches!(
            parse(r#"{"event":"media","media":{"payload":"AAEC","track":7}}"#),
            Ok(Inbound::Media { track: Some(t), .. }) if t == "7"
        ));
        let bad = r#"{"event":"media","media":{"payload":"%%%"}}"#;
        assert_eq!(media_fast::parse(bad), Some(Err(FrameError::InvalidMedia)));
        assert_eq!(parse_tree(bad), Err(FrameError::InvalidMedia));
    }
}
