//! A text frame from a carrier's media-stream WebSocket (Telnyx or Twilio JSON).
#![no_main]

use bond_calls::streams::frames;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = frames::parse(text);
    }
});
