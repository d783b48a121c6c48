//! An RFC 4733 telephone-event payload.
#![no_main]

use bond_codecs::dtmf::TelephoneEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let _ = TelephoneEvent::decode(payload);
});
