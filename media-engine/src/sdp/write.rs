//! Rendering Bond's offer or answer.

use std::fmt::Write as _;
use std::net::IpAddr;

use bond_codecs::Codec;

use super::{Crypto, Direction};

/// Bond's side of the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub session_id: u64,
    /// Bumped on every new offer or answer in the session (RFC 3264 §8).
    pub version: u64,
    pub address: IpAddr,
    pub port: u16,
    /// Payload types and codecs, in Bond's order of preference.
    pub codecs: Vec<(u8, Codec)>,
    /// Telephone-event payload type (at the first codec's RTP clock).
    pub telephone_event_pt: Option<u8>,
    pub direction: Direction,
    /// RTCP on the RTP port (`a=rtcp-mux`): offered, or agreed in an answer.
    pub rtcp_mux: bool,
    /// `a=ptime`: 20 in an offer; in an answer, the packet time Bond sends at.
    pub ptime: u32,
    /// SDES keys Bond offers (several suites) or answers with (one): the
    /// stream is SRTP. In `RTP/SAVP` when `secure`, else in `RTP/AVP` (an
    /// offer that a peer without SRTP can still answer plainly).
    pub crypto: Vec<Crypto>,
    pub secure: bool,
}

/// The SDP text for `media`.
pub fn write(media: &LocalMedia) -> String {
    let ip = match media.address {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    };
    let mut sdp = String::with_capacity(320);
    let _ = write!(
        sdp,
        "v=0\r\no=bond {} {} IN {ip} {addr}\r\ns=bond\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm=audio {} {}",
        media.session_id,
        media.version,
        media.port,
        if media.secure { "RTP/SAVP" } else { "RTP/AVP" },
        addr = media.address,
    );
    for (pt, _) in &media.codecs {
        let _ = write!(sdp, " {pt}");
    }
    if let Some(pt) = media.telephone_event_pt {
        let _ = write!(sdp, " {pt}");
    }
    sdp.push_str("\r\n");
    for (pt, codec) in &media.codecs {
        let channels = if *codec == Codec::Opus { "/2" } else { "" };
        let _ =
            write!(sdp, "a=rtpmap:{pt} {}/{}{channels}\r\n", codec.encoding_name(), codec.rtp_clock_rate());
        if *codec == Codec::Opus {
            let _ = write!(sdp, "a=fmtp:{pt} useinbandfec=1\r\n");
        }
    }
    if let Some(pt) = media.telephone_event_pt {
        let clock = media.codecs.first().map_or(8000, |(_, c)| c.rtp_clock_rate());
        let _ = write!(sdp, "a=rtpmap:{pt} telephone-event/{clock}\r\na=fmtp:{pt} 0-16\r\n");
    }
    let _ = write!(sdp, "a=ptime:{}\r\na={}\r\n", media.ptime, media.direction.attribute());
    if media.rtcp_mux {
        sdp.push_str("a=rtcp-mux\r\n");
    }
    for crypto in &media.crypto {
        let _ = write!(sdp, "a=crypto:{}\r\n", crypto.value());
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::super::{answer, SessionDescription};
    use super::*;

    #[test]
    fn what_bond_writes_it_reads_back_and_agrees_with() {
        let local = LocalMedia {
            session_id: 42,
            version: 3,
            address: "192.0.2.7".parse().unwrap(),
            port: 30000,
            codecs: vec![(0, Codec::Pcmu), (8, Codec::Pcma), (9, Codec::G722), (111, Codec::Opus)],
            telephone_event_pt: Some(101),
            direction: Direction::SendRecv,
            rtcp_mux: true,
            ptime: 20,
            crypto: Vec::new(),
            secure: false,
        };
        let text = write(&local);
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!((parsed.origin_session_id, parsed.origin_version), (42, 3));
        assert_eq!(parsed.media[0].formats, vec![0, 8, 9, 111, 101]);
        assert_eq!(parsed.media[0].rtpmap(111).unwrap().channels, Some(2));
        let plan = answer(&parsed, &[Codec::G722]).unwrap();
        assert_eq!((plan.codec, plan.payload_type, plan.telephone_event_pt), (Codec::G722, 9, Some(101)));
        assert_eq!(plan.remote, Some("192.0.2.7:30000".parse().unwrap()));
        assert!(plan.rtcp_mux);
        assert_eq!((parsed.media[0].ptime, plan.packet_ms()), (Some(20), 20));
        let unmuxed = write(&LocalMedia { rtcp_mux: false, ..local });
        assert!(!SessionDescription::parse(unmuxed.as_bytes()).unwrap().media[0].rtcp_mux);
    }

    #[test]
    fn an_srtp_offer_carries_its_keys_and_the_answer_to_it_names_one() {
        use crate::rtp::srtp::{SrtpKey, SrtpSuite, KEY_MATERIAL};
        let crypto =
            |tag, suite, fill| Crypto { tag, key: SrtpKey { suite, material: [fill; KEY_MATERIAL] } };
        let offered =
            vec![crypto(1, SrtpSuite::AesCm128HmacSha1_80, 1), crypto(2, SrtpSuite::AesCm128HmacSha1_32, 2)];
        let local = LocalMedia {
            session_id: 1,
            version: 1,
            address: "192.0.2.7".parse().unwrap(),
            port: 30000,
            codecs: vec![(0, Codec::Pcmu)],
            telephone_event_pt: Some(101),
            direction: Direction::SendRecv,
            rtcp_mux: false,
            ptime: 20,
            crypto: offered.clone(),
            secure: true,
        };
        let text = write(&local);
        assert!(text.contains("m=audio 30000 RTP/SAVP 0 101\r\n"), "{text}");
        let parsed = SessionDescription::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.media[0].crypto, offered);
        let plan = answer(&parsed, &[Codec::Pcmu]).unwrap();
        assert!(plan.secure);
        assert_eq!(plan.crypto, Some(offered[0]));
        // SAVP whose keys are all in suites Bond does not speak cannot be answered.
        let foreign = text.replace("AES_CM_128_HMAC_SHA1", "F8_128_HMAC_SHA1");
        let parsed = SessionDescription::parse(foreign.as_bytes()).unwrap();
        assert_eq!(answer(&parsed, &[Codec::Pcmu]), Err(super::super::NegotiationError::NoCommonCrypto));
        // Keys offered in RTP/AVP: SRTP if the answerer takes it, plain RTP if not.
        let best_effort = write(&LocalMedia { secure: false, ..local });
        let plan =
            answer(&SessionDescription::parse(best_effort.as_bytes()).unwrap(), &[Codec::Pcmu]).unwrap();
        assert!(!plan.secure && plan.crypto.is_some());
    }
}
