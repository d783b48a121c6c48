//! Offer/answer (RFC 3264) for one audio stream.

use std::net::{IpAddr, SocketAddr};

use bond_codecs::opus_peer::OpusPeer;
use bond_codecs::Codec;

use super::{Crypto, Direction, MediaDescription, SessionDescription};

/// What both sides agreed on for the audio stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPlan {
    pub codec: Codec,
    pub payload_type: u8,
    /// RFC 4733 events at the codec's RTP clock, when the peer takes them.
    pub telephone_event_pt: Option<u8>,
    /// Where the peer wants RTP; `None` when it wants none now (port 0 or a
    /// `0.0.0.0` hold address).
    pub remote: Option<SocketAddr>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// What the peer said about its own side.
    pub peer_direction: Direction,
    /// The peer multiplexes RTCP on its RTP port (`a=rtcp-mux`, RFC 5761): in
    /// an offer, it asks Bond to; in an answer, it agrees to Bond's asking.
    pub rtcp_mux: bool,
    /// The peer's `m=` line is `RTP/SAVP`: the audio must be SRTP.
    pub secure: bool,
    /// The peer's first SDES key in a suite Bond speaks: in an offer, the key
    /// it will send with (Bond answers in its suite and tag); in an answer, the
    /// one it chose for Bond's offer of that tag.
    pub crypto: Option<Crypto>,
    /// For Opus, what the peer asked of the Opus it receives (its `a=fmtp`).
    pub opus: Option<OpusPeer>,
}

impl MediaPlan {
    /// Bond's direction in its answer to this offer.
    pub fn local_direction(&self) -> Direction {
        self.peer_direction.reversed()
    }

    /// Bond should send RTP to the peer.
    pub fn send(&self) -> bool {
        self.peer_direction.receives() && self.remote.is_some()
    }

    /// How long each packet Bond sends is, in ms: the peer's `a=ptime` when
    /// it is 10, 20, 30, 40 or 60, else 20; shortened to the longest of those
    /// within the peer's `a=maxptime` (10 at the least).
    pub fn packet_ms(&self) -> u32 {
        let packet_times: &[u32] = &[60, 40, 30, 20, 10];
        let asked = self.ptime.filter(|ms| packet_times.contains(ms)).unwrap_or(20);
        let limit = asked.min(self.maxptime.unwrap_or(asked));
        let shortest = packet_times[packet_times.len() - 1];
        packet_times.iter().copied().find(|&ms| ms <= limit).unwrap_or(shortest)
    }
}

/// Why no media could be agreed (SIP answers 488).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    #[error("the offer has no RTP audio stream")]
    NoAudio,
    #[error("no offered codec is one Bond speaks (PCMU, PCMA, G722, opus)")]
    NoCommonCodec,
    #[error("the offer gives no connection address for its audio")]
    NoAddress,
    #[error("the audio is RTP/SAVP but no a=crypto key is in a suite Bond speaks (AES_CM_128_HMAC_SHA1_80 or _32)")]
    NoCommonCrypto,
}

/// Answer an offer: the first codec in the offerer's order that Bond also lists in
/// `supported`, with the offer's payload types.
pub fn answer(offer: &SessionDescription, supported: &[Codec]) -> Result<MediaPlan, NegotiationError> {
    plan(offer, supported)
}

/// Read the answer to Bond's offer of `offered`.
pub fn accept_answer(answer: &SessionDescription, offered: &[Codec]) -> Result<MediaPlan, NegotiationError> {
    plan(answer, offered)
}

fn plan(sdp: &SessionDescription, codecs: &[Codec]) -> Result<MediaPlan, NegotiationError> {
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media == "audio" && m.protocol.starts_with("RTP/"))
        .ok_or(NegotiationError::NoAudio)?;
    let (payload_type, codec) = audio
        .formats
        .iter()
        .find_map(|&pt| codec_of(audio, pt, codecs).map(|codec| (pt, codec)))
        .ok_or(NegotiationError::NoCommonCodec)?;
    let address = audio.connection.or(sdp.connection).ok_or(NegotiationError::NoAddress)?;
    let crypto = audio.crypto.first().copied();
    if audio.secure() && crypto.is_none() {
        return Err(NegotiationError::NoCommonCrypto);
    }
    let remote = (audio.port != 0 && !address.is_unspecified()).then(|| SocketAddr::new(address, audio.port));
    // Old-style hold (RFC 2543): c=0.0.0.0 means the peer wants nothing sent.
    let held = matches!(address, IpAddr::V4(v4) if v4.is_unspecified());
    let mut peer_direction = audio.direction.or(sdp.direction).unwrap_or_default();
    if held && peer_direction == Direction::SendRecv {
        peer_direction = Direction::SendOnly;
    }
    if audio.port == 0 {
        peer_direction = Direction::Inactive;
    }
    Ok(MediaPlan {
        codec,
        payload_type,
        telephone_event_pt: telephone_event(audio, codec.rtp_clock_rate()),
        remote,
        ptime: audio.ptime,
        maxptime: audio.maxptime,
        peer_direction,
        rtcp_mux: audio.rtcp_mux,
        secure: audio.secure(),
        crypto,
        opus: (codec == Codec::Opus).then(|| OpusPeer::from_fmtp(audio.fmtp(payload_type).unwrap_or(""))),
    })
}

/// The Bond codec payload type `pt` carries, if Bond speaks it and lists it.
fn codec_of(audio: &MediaDescription, pt: u8, allowed: &[Codec]) -> Option<Codec> {
    let map = audio.rtpmap(pt)?;
    let codec = match (map.encoding.to_ascii_lowercase().as_str(), map.clock_rate) {
        ("pcmu", 8000) => Codec::Pcmu,
        ("pcma", 8000) => Codec::Pcma,
        ("g722", 8000) => Codec::G722,
        ("opus", 48000) => Codec::Opus,
        _ => return None,
    };
    allowed.contains(&codec).then_some(codec)
}

fn telephone_event(audio: &MediaDescription, clock_rate: u32) -> Option<u8> {
    audio.formats.iter().copied().find(|&pt| {
        audio
            .rtpmap(pt)
            .is_some_and(|m| m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == clock_rate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Codec] = &[Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

    fn sdp(media: &str) -> SessionDescription {
        let text = format!("v=0\r\no=- 1 1 IN IP4 10.1.1.1\r\ns=-\r\nc=IN IP4 10.1.1.1\r\nt=0 0\r\n{media}");
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn an_opus_peer_says_what_it_receives_in_the_fmtp_of_the_chosen_payload_type() {
        let offer = sdp("m=audio 4000 RTP/AVP 96 111 0\r\na=rtpmap:96 opus/48000/2\r\n\
             a=fmtp:96 maxplaybackrate=16000;useinbandfec=1\r\na=rtpmap:111 opus/48000/2\r\n\
             a=fmtp:111 maxplaybackrate=8000\r\n");
        let plan = answer(&offer, ALL).unwrap();
        let peer = plan.opus.unwrap();
        assert_eq!((plan.payload_type, peer.max_playback_rate, peer.inband_fec), (96, 16_000, true));
        let bare = sdp("m=audio 4000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n");
        assert_eq!(answer(&bare, ALL).unwrap().opus, Some(OpusPeer::default()));
        assert_eq!(answer(&sdp("m=audio 4000 RTP/AVP 0\r\n"), ALL).unwrap().opus, None);
    }

    #[test]
    fn the_offerers_first_shared_codec_wins_with_its_telephone_events() {
        let offer = sdp("m=audio 4000 RTP/AVP 18 8 0 101\r\na=rtpmap:18 G729/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\n");
        let plan = answer(&offer, ALL).unwrap();
        assert_eq!((plan.codec, plan.payload_type, plan.telephone_event_pt), (Codec::Pcma, 8, Some(101)));
        assert_eq!(plan.remote, Some("10.1.1.1:4000".parse().unwrap()));
        assert_eq!(plan.local_direction(), Direction::SendRecv);
        assert!(plan.send());
        assert!(!plan.rtcp_mux);
    }

    #[test]
    fn bond_sends_the_peers_ptime_within_its_maxptime() {
        let packet_ms = |attributes: &str, codec: &str| {
            let offer = sdp(&format!("m=audio 4000 RTP/AVP {codec}\r\n{attributes}"));
            answer(&offer, ALL).unwrap().packet_ms()
        };
        let pcmu = |attributes: &str| packet_ms(attributes, "0");
        assert_eq!(pcmu(""), 20);
        assert_eq!(pcmu("a=ptime:40\r\n"), 40);
        assert_eq!(pcmu("a=ptime:40\r\na=maxptime:40\r\n"), 40);
        assert_eq!(pcmu("a=ptime:60\r\na=maxptime:50\r\n"), 40, "the longest that fits");
        assert_eq!(pcmu("a=maxptime:10\r\n"), 10, "no ptime: 20 is too long");
        assert_eq!(pcmu("a=maxptime:15\r\n"), 10);
        assert_eq!(pcmu("a=maxptime:5\r\n"), 10, "never under 10");
        assert_eq!(pcmu("a=ptime:25\r\na=maxptime:120\r\n"), 20);
        let opus = |attributes: &str| packet_ms(&format!("a=rtpmap:96 opus/48000/2\r\n{attributes}"), "96");
        assert_eq!(opus("a=ptime:40\r\n"), 40);
        assert_eq!(opus("a=ptime:60\r\na=maxptime:50\r\n"), 40);
        assert_eq!(opus("a=ptime:40\r\na=maxptime:10\r\n"), 10);
        assert_eq!(opus("a=ptime:30\r\n"), 30);
        assert_eq!(opus("a=ptime:10\r\n"), 10);
        assert_eq!(opus("a=ptime:5\r\n"), 20, "not a packet time Bond sends");
        assert!(SessionDescription::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\na=maxptime:x\r\n").is_err());
    }

    #[test]
    fn an_offer_to_multiplex_rtcp_is_carried_in_the_plan() {
        let offer = sdp("m=audio 4000 RTP/AVP 0\r\na=rtcp-mux\r\n");
        assert!(answer(&offer, ALL).unwrap().rtcp_mux);
    }

    #[test]
    fn opus_takes_dynamic_types_and_events_at_48_khz() {
        let offer = sdp("m=audio 4000 RTP/AVP 96 97 98\r\na=rtpmap:96 OPUS/48000/2\r\n\
             a=rtpmap:97 telephone-event/8000\r\na=rtpmap:98 telephone-event/48000\r\n");
        let plan = answer(&offer, ALL).unwrap();
        assert_eq!((plan.codec, plan.payload_type, plan.telephone_event_pt), (Codec::Opus, 96, Some(98)));
    }

    #[test]
    fn codecs_bond_does_not_list_are_skipped() {
        let offer = sdp("m=audio 4000 RTP/AVP 9 0\r\n");
        assert_eq!(answer(&offer, &[Codec::Pcmu]).unwrap().codec, Codec::Pcmu);
        assert_eq!(answer(&offer, &[Codec::Pcma]), Err(NegotiationError::NoCommonCodec));
    }

    #[test]
    fn hold_offers_are_read_as_directions() {
        let sendonly = answer(&sdp("m=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"), ALL).unwrap();
        assert_eq!(sendonly.local_direction(), Direction::RecvOnly);
        assert!(!sendonly.send());
        let inactive = answer(&sdp("m=audio 4000 RTP/AVP 0\r\na=inactive\r\n"), ALL).unwrap();
        assert_eq!(inactive.local_direction(), Direction::Inactive);
        let text = "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let old_style = answer(&SessionDescription::parse(text.as_bytes()).unwrap(), ALL).unwrap();
        assert_eq!((old_style.remote, old_style.local_direction()), (None, Direction::RecvOnly));
    }

    #[test]
    fn offers_without_audio_or_address_are_refused() {
        assert_eq!(answer(&sdp("m=video 4000 RTP/AVP 96\r\n"), ALL), Err(NegotiationError::NoAudio));
        let text = "v=0\r\no=- 1 1 IN IP4 1.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let offer = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(answer(&offer, ALL), Err(NegotiationError::NoAddress));
    }
}
