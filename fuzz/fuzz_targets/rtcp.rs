//! An RTCP compound packet from a peer, read into a leg's RTCP state.
#![no_main]

use bond_media_engine::rtp::rtcp::Rtcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    let now = bond_media_engine::sim::epoch();
    let mut rtcp = Rtcp::new("bond@fuzz", 8000, 1, now);
    let _ = rtcp.receive(now, 1 << 40, datagram, 0x5EE);
    let _ = rtcp.remote();
});
