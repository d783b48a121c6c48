//! libFuzzer's entry to `bond_fuzz::sip_request` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::sip_request(data));
