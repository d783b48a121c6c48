//! `media` frames, fifty a second on every stream, read straight into the
//! fields Bond uses, borrowing from the frame's text instead of building a JSON
//! tree. Anything this reading does not take (another event, a field of an
//! unexpected type, both spellings of a field) goes the full way in
//! [`super::parse`], so the two never disagree.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{FrameError, Inbound, BASE64};

#[derive(Deserialize)]
struct MediaFrame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, alias = "sequenceNumber")]
    sequence_number: Counter,
    #[serde(borrow, default)]
    media: Option<MediaBody<'a>>,
}

#[derive(Deserialize)]
struct MediaBody<'a> {
    #[serde(default)]
    chunk: Counter,
    #[serde(borrow, default)]
    track: Option<Cow<'a, str>>,
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

/// A counter sent as a string or a number; what is neither a whole number nor
/// a string of one reads as none, as in the full reading.
#[derive(Default)]
struct Counter(Option<u64>);

impl<'de> Deserialize<'de> for Counter {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CounterVisitor)
    }
}

struct CounterVisitor;

impl Visitor<'_> for CounterVisitor {
    type Value = Counter;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a counter, as a number or a string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Counter, E> {
        Ok(Counter(Some(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Counter, E> {
        Ok(Counter(u64::try_from(v).ok()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Counter, E> {
        Ok(Counter(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Counter, E> {
        Ok(Counter(v.parse().ok()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Counter, E> {
        Ok(Counter(None))
    }
}

/// The frame read as `media`, or `None` when it must go the full way.
pub(super) fn parse(frame: &str) -> Option<Result<Inbound, FrameError>> {
    let MediaFrame { event, sequence_number, media } = serde_json::from_str(frame).ok()?;
    let media = media.filter(|_| event == "media")?;
    Some(match BASE64.decode(media.payload.as_bytes()) {
        Ok(payload) => Ok(Inbound::Media {
            chunk: media.chunk.0,
            sequence: sequence_number.0,
            track: media.track.map(Cow::into_owned),
            payload,
        }),
        Err(_) => Err(FrameError::InvalidMedia),
    })
}
