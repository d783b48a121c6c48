//! A datagram on an RTP port: the RTP header parser, then its payload as a telephone-event.
#![no_main]

use bond_codecs::dtmf::TelephoneEvent;
use bond_media_engine::rtp::RtpPacket;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    if let Ok(packet) = RtpPacket::parse(datagram) {
        let _ = TelephoneEvent::decode(packet.payload);
    }
});
