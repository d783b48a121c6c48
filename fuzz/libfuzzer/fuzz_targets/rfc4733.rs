//! libFuzzer's entry to `bond_fuzz::rfc4733` (fuzz/src says what it reads).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| bond_fuzz::rfc4733(data));
