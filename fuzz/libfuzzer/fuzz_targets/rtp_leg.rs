//! libFuzzer's entry to `bond_fuzz::rtp_leg` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::rtp_leg(data));
