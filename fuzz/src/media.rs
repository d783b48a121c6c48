//! The media path's parsers and an engine leg: SDP, RTP, RFC 4733, STUN, RTCP.

use std::time::{Duration, Instant};

use bond_codecs::dtmf::TelephoneEvent;
use bond_codecs::Codec;
use bond_media_engine::leg::{MediaSource, RtcpSetup};
use bond_media_engine::rtp::rtcp::Rtcp;
use bond_media_engine::rtp::RtpPacket;
use bond_media_engine::sdp::{accept_answer, answer, SessionDescription};
use bond_media_engine::Engine;

const SDP_CODECS: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];
const LEG_CODECS: [Codec; 4] = [Codec::Pcmu, Codec::Pcma, Codec::G722, Codec::Opus];

/// SDP from a SIP peer: parse it, then negotiate it as an offer and as an answer.
pub fn sdp(body: &[u8]) {
    if let Ok(sdp) = SessionDescription::parse(body) {
        let _ = answer(&sdp, &SDP_CODECS);
        let _ = accept_answer(&sdp, &SDP_CODECS);
    }
}

/// A datagram on an SRTP leg's port (SDES keys fixed here): the first byte
/// picks what happens to the rest. Even: it is checked and decrypted as it
/// came (a bad tag, a replay or garbage must be refused, never panic). Odd:
/// Bond protects it and its peer must get back exactly what was protected.
pub fn srtp(data: &[u8]) {
    use bond_media_engine::rtp::srtp::{SrtpKey, SrtpSession, SrtpSuite, KEY_MATERIAL};
    let Some((&mode, packet)) = data.split_first() else { return };
    let suite = if mode & 2 == 0 { SrtpSuite::AesCm128HmacSha1_80 } else { SrtpSuite::AesCm128HmacSha1_32 };
    let (bond, peer) =
        (SrtpKey { suite, material: [1; KEY_MATERIAL] }, SrtpKey { suite, material: [2; KEY_MATERIAL] });
    let (Ok(mut bond), Ok(mut peer)) = (SrtpSession::new(&bond, &peer), SrtpSession::new(&peer, &bond))
    else {
        return;
    };
    if mode & 1 == 0 {
        let _ = bond.unprotect(packet);
    } else if let Ok(protected) = bond.protect(packet) {
        assert_eq!(
            peer.unprotect(&protected).as_deref().ok(),
            Some(packet),
            "a round trip changed the packet"
        );
    }
}

/// A datagram on an RTP port: the RTP header parser, then its payload as a telephone-event.
pub fn rtp_packet(datagram: &[u8]) {
    if let Ok(packet) = RtpPacket::parse(datagram) {
        let _ = TelephoneEvent::decode(packet.payload);
    }
}

/// An RFC 4733 telephone-event payload.
pub fn rfc4733(payload: &[u8]) {
    let _ = TelephoneEvent::decode(payload);
}

/// A datagram on the shared WebRTC port: is it STUN, and whose ICE ufrag does it name.
pub fn stun(datagram: &[u8]) {
    use bond_media_engine::webrtc::stun;
    if stun::is_stun(datagram) {
        let _ = stun::local_ufrag(datagram);
    }
}

/// An RTCP compound packet from a peer, read into a leg's RTCP state.
pub fn rtcp(datagram: &[u8]) {
    let now = bond_media_engine::sim::epoch();
    let mut rtcp = Rtcp::new("bond@fuzz", 8000, 1, now);
    let _ = rtcp.receive(now, 1 << 40, datagram, 0x5EE);
    let _ = rtcp.remote();
}

/// Datagrams into a live engine leg, with time passing between them: the
/// playout buffer, concealment, the decoder, the DTMF taps and (for datagrams
/// typed as RTCP) the RTCP reader all see them. The input is a list of
/// datagrams, each a length byte then its bytes; the first byte picks the
/// leg's codec.
pub fn rtp_leg(data: &[u8]) {
    let Some((&pick, mut rest)) = data.split_first() else { return };
    let mut engine = Engine::new(7);
    // The starting point only: from here time moves by the input.
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut config = engine.leg_config(LEG_CODECS[usize::from(pick) % LEG_CODECS.len()]);
    config.rtcp = Some(RtcpSetup { cname: "fuzz".into(), unix_time_at_start: Duration::from_secs(1) });
    let Ok(leg) = engine.add_leg(now, config, MediaSource::Echo) else { return };
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;
        let _ = engine.handle_receive(now, leg, datagram);
        now += Duration::from_millis(7);
        engine.handle_timeout(now);
        while engine.poll_output().is_some() {}
    }
}
