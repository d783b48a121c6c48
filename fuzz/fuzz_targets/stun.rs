//! A datagram on the shared WebRTC port: is it STUN, and whose ICE ufrag does it name.
#![no_main]

use bond_media_engine::webrtc::stun;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    if stun::is_stun(datagram) {
        let _ = stun::local_ufrag(datagram);
    }
});
