//! libFuzzer's entry to `bond_fuzz::action_body` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::action_body(data));
