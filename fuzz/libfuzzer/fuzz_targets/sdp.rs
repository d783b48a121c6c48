//! libFuzzer's entry to `bond_fuzz::sdp` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::sdp(data));
