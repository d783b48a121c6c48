//! libFuzzer's entry to `bond_fuzz::srtp` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::srtp(data));
