//! The audio side of a SIP call: its RTP leg and Bond's SDP for it, with the
//! SDES keys (RFC 4568) when the call is SRTP: Bond draws a fresh key for each
//! offer or answer from the operating system's generator and pairs it with the
//! peer's for the leg.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bond_codecs::Codec;
use bond_media_engine::ids::PayloadType;
use bond_media_engine::leg::{MediaSource, RtpMedia, Srtp, SrtpKeys};
use bond_media_engine::rtp::srtp::{Crypto, SrtpKey, SrtpSuite, KEY_MATERIAL};
use bond_media_engine::runtime::{EngineHandle, LegSpec, RuntimeError};
use bond_media_engine::sdp::{self, Direction, LocalMedia, MediaPlan, NegotiationError, SessionDescription};
use bond_media_engine::LegId;
use rand::RngCore;

use super::settings::SrtpMode;

/// A SIP call's leg and what Bond last told the peer about it.
#[derive(Debug, Clone)]
pub struct CallMedia {
    pub leg: LegId,
    pub local: LocalMedia,
    /// What offer/answer settled; `None` while Bond's offer is unanswered.
    pub plan: Option<MediaPlan>,
}

/// Open an RTP leg for `media` (created quiet: see [`rtp_media`] and [`offer_rtp_media`]),
/// ending when no RTP arrives for `rtp_timeout` while the peer should be sending.
pub async fn open_leg(
    engine: &EngineHandle,
    media: RtpMedia,
    remote: Option<SocketAddr>,
    rtp_timeout: Option<Duration>,
) -> Result<(LegId, u16), RuntimeError> {
    let spec = LegSpec { media, source: MediaSource::Silence, remote, media_timeout: rtp_timeout };
    let info = engine.create_leg(spec).await?;
    Ok((info.id, info.local_addr.port()))
}

/// Before Bond's offer is answered: the first codec offered, on the payload types
/// the offer gives it; nothing sent, nothing expected; with SRTP required,
/// nothing taken in either until the answer gives the peer's key.
pub fn offer_rtp_media(codecs: &[Codec], mode: SrtpMode) -> RtpMedia {
    let srtp = if mode == SrtpMode::Required { Srtp::Awaiting } else { Srtp::Off };
    RtpMedia { send: false, expect_media: false, srtp, ..RtpMedia::new(codecs[0]) }
}

/// How the leg runs under `plan`, Bond having offered or answered `local`
/// keys; before the answer Bond sends nothing and expects nothing (early media
/// from the peer is still played).
pub fn rtp_media(plan: &MediaPlan, answered: bool, local: &[Crypto]) -> RtpMedia {
    RtpMedia {
        srtp: srtp_keys(plan, local).map_or(Srtp::Off, Srtp::On),
        codec: plan.codec,
        payload_type: PayloadType::new(plan.payload_type).unwrap_or(PayloadType::new(0).expect("0 is valid")),
        telephone_event_pt: plan.telephone_event_pt.and_then(PayloadType::new),
        send: answered && plan.send(),
        expect_media: answered && plan.peer_direction.sends(),
        rtcp_mux: plan.rtcp_mux,
        packet_ms: plan.packet_ms(),
        opus_peer: plan.opus,
    }
}

/// The leg's SRTP: the peer's key in `plan` with Bond's key of the same tag
/// and suite in `local`; `None` for plain RTP.
pub fn srtp_keys(plan: &MediaPlan, local: &[Crypto]) -> Option<SrtpKeys> {
    let remote = plan.crypto?;
    let mine = local.iter().find(|c| c.tag == remote.tag && c.key.suite == remote.key.suite)?;
    Some(SrtpKeys { local: mine.key, remote: remote.key })
}

/// Bond's keys for its answer to `plan` under `mode`: one, in the peer's first
/// usable suite and tag, when the offer carries keys and SRTP is on; none for
/// plain RTP; why not, when the offer cannot be answered (488).
pub fn answer_crypto(plan: &MediaPlan, mode: SrtpMode) -> Result<Vec<Crypto>, &'static str> {
    match (plan.crypto, mode) {
        (_, SrtpMode::Off) if plan.secure => Err("the offer is RTP/SAVP and SRTP is off on this connection"),
        (None, SrtpMode::Required) => Err("the offer has no SRTP key and this connection requires SRTP"),
        (Some(theirs), SrtpMode::Offered | SrtpMode::Required) => {
            Ok(vec![Crypto { tag: theirs.tag, key: fresh_key(theirs.key.suite) }])
        }
        _ => Ok(Vec::new()),
    }
}

/// Bond's keys for an offer under `mode`: one per suite, best first.
fn offer_crypto(mode: SrtpMode) -> Vec<Crypto> {
    match mode {
        SrtpMode::Off => Vec::new(),
        _ => (1..).zip(SrtpSuite::ALL).map(|(tag, suite)| Crypto { tag, key: fresh_key(suite) }).collect(),
    }
}

/// A new master key and salt from the operating system's generator.
fn fresh_key(suite: SrtpSuite) -> SrtpKey {
    let mut material = [0u8; KEY_MATERIAL];
    rand::rngs::OsRng.fill_bytes(&mut material);
    SrtpKey { suite, material }
}

/// Bond's answer to `plan`, with `crypto` (from [`answer_crypto`]).
pub fn answer_media(plan: &MediaPlan, address: IpAddr, port: u16, crypto: Vec<Crypto>) -> LocalMedia {
    LocalMedia {
        session_id: session_id(),
        version: 1,
        address,
        port,
        codecs: vec![(plan.payload_type, plan.codec)],
        telephone_event_pt: plan.telephone_event_pt,
        direction: plan.local_direction(),
        rtcp_mux: plan.rtcp_mux,
        // The packet time Bond sends at, so both directions agree.
        ptime: plan.packet_ms(),
        secure: plan.secure && !crypto.is_empty(),
        crypto,
    }
}

/// Bond's offer of `codecs`, with SRTP keys as `mode` says.
pub fn offer_media(codecs: &[Codec], address: IpAddr, port: u16, mode: SrtpMode) -> LocalMedia {
    LocalMedia {
        session_id: session_id(),
        version: 1,
        address,
        port,
        codecs: codecs.iter().map(|&c| (RtpMedia::new(c).payload_type.get(), c)).collect(),
        telephone_event_pt: offer_rtp_media(codecs, mode).telephone_event_pt.map(PayloadType::get),
        direction: Direction::SendRecv,
        // Offered; RTCP stays on the port above until the answer agrees (RFC 5761 §5.1.1).
        rtcp_mux: true,
        ptime: 20,
        crypto: offer_crypto(mode),
        secure: mode == SrtpMode::Required,
    }
}

/// Answer a re-INVITE's offer: keep the codec if still offered, else another at
/// the same rate (a bridged leg keeps its rate); then a new version of Bond's SDP.
pub fn reanswer(
    media: &mut CallMedia,
    offer: &SessionDescription,
    codecs: &[Codec],
) -> Result<MediaPlan, NegotiationError> {
    let current = media.plan.map_or(codecs[0], |p| p.codec);
    let same_rate: Vec<Codec> =
        codecs.iter().copied().filter(|c| c.sample_rate() == current.sample_rate()).collect();
    let plan = sdp::answer(offer, &[current]).or_else(|_| sdp::answer(offer, &same_rate))?;
    media.local.version += 1;
    media.local.codecs = vec![(plan.payload_type, plan.codec)];
    media.local.telephone_event_pt = plan.telephone_event_pt;
    media.local.direction = plan.local_direction();
    media.local.rtcp_mux = plan.rtcp_mux;
    media.local.ptime = plan.packet_ms();
    // SRTP stays as it was: Bond's key kept while the suite is, a new one
    // for another suite, none when the new offer has none.
    media.local.crypto = match plan.crypto {
        None => Vec::new(),
        Some(theirs) => {
            let kept = media.local.crypto.iter().find(|c| c.key.suite == theirs.key.suite).map(|c| c.key);
            vec![Crypto { tag: theirs.tag, key: kept.unwrap_or_else(|| fresh_key(theirs.key.suite)) }]
        }
    };
    media.local.secure = plan.secure && !media.local.crypto.is_empty();
    media.plan = Some(plan);
    Ok(plan)
}

fn session_id() -> u64 {
    u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 of 16 bytes")) >> 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(formats: &str, rtpmap: &str, ptime: u32) -> SessionDescription {
        let text = format!(
            "v=0\r\no=peer 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {formats}\r\n{rtpmap}a=ptime:{ptime}\r\na=sendrecv\r\n"
        );
        SessionDescription::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn the_answer_and_the_leg_take_the_peers_packet_time_and_a_reoffer_changes_it() {
        let pcmu = offer("0", "", 30);
        let plan = sdp::answer(&pcmu, &[Codec::Pcmu]).unwrap();
        let local = answer_media(&plan, "192.0.2.9".parse().unwrap(), 5000, Vec::new());
        assert!(sdp::write(&local).contains("a=ptime:30\r\n"));
        assert_eq!(rtp_media(&plan, true, &[]).packet_ms, 30);

        let mut media = CallMedia { leg: LegId(1), local, plan: Some(plan) };
        let plan = reanswer(&mut media, &offer("0", "", 40), &[Codec::Pcmu]).unwrap();
        assert_eq!((media.local.ptime, rtp_media(&plan, true, &[]).packet_ms), (40, 40));

        // Opus joins 20 ms frames (40 and 60 ms) or 10 ms ones (30); a packet
        // time Bond does not make falls back to 20.
        let opus = |ms| sdp::answer(&offer("111", "a=rtpmap:111 opus/48000/2\r\n", ms), &[Codec::Opus]);
        assert_eq!(opus(40).unwrap().packet_ms(), 40);
        assert_eq!(opus(30).unwrap().packet_ms(), 30);
        assert_eq!(opus(25).unwrap().packet_ms(), 20);
        assert_eq!(sdp::answer(&offer("0", "", 25), &[Codec::Pcmu]).unwrap().packet_ms(), 20);
    }
}
