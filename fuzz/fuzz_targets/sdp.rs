//! SDP from a SIP peer: parse it, then negotiate it as an offer and as an answer.
#![no_main]

use bond_codecs::Codec;
use bond_media_engine::sdp::{accept_answer, answer, SessionDescription};
use libfuzzer_sys::fuzz_target;

const SUPPORTED: [Codec; 4] = [Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];

fuzz_target!(|body: &[u8]| {
    if let Ok(sdp) = SessionDescription::parse(body) {
        let _ = answer(&sdp, &SUPPORTED);
        let _ = accept_answer(&sdp, &SUPPORTED);
    }
});
