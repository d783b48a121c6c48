//! libFuzzer's entry to `bond_fuzz::rtcp` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::rtcp(data));
