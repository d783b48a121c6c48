//! A SIP request as Bond's own code reads it after the stack has parsed it:
//! the source stamp, From/To, digest answers, INFO digits, the SDP offer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|datagram: &[u8]| {
    bond_calls::sip::examine(datagram, "192.0.2.1:5060".parse().expect("an address"));
});
