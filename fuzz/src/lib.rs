//! What Bond reads from the network, as fuzz targets: each is a function of
//! the input bytes that must return, whatever the bytes, without a panic.
//!
//! `libfuzzer/` (its own workspace: sanitizer flags never touch Bond's build)
//! runs each under libFuzzer for campaigns (`scripts/fuzz`); `tests/seeds.rs`
//! runs each on its committed seeds (`fuzz/seeds/TARGET/`), on the corpus a
//! campaign left in `fuzz/corpus/TARGET/`, and on a fixed set of mutants of
//! the seeds, in every `cargo test`. docs/fuzzing.md says what each covers.
//!
//! Depends on the crates it fuzzes and is used by nothing but its harnesses.

mod api;
mod media;
mod signalling;

pub use api::{agent_frame, api_action};
pub use media::{rfc4733, rtcp, rtp_leg, rtp_packet, sdp, srtp, stun};
pub use signalling::{action_body, sip_request, stream_frame};

/// A fuzz target: the input bytes in, nothing out; it must not panic.
pub type Target = fn(&[u8]);

/// Every target by the name `scripts/fuzz`, the seed folders and the libFuzzer
/// binaries give it.
pub const TARGETS: &[(&str, Target)] = &[
    ("sdp", sdp),
    ("rtp_packet", rtp_packet),
    ("rfc4733", rfc4733),
    ("stun", stun),
    ("rtp_leg", rtp_leg),
    ("rtcp", rtcp),
    ("srtp", srtp),
    ("stream_frame", stream_frame),
    ("sip_request", sip_request),
    ("action_body", action_body),
    ("api_action", api_action),
    ("agent_frame", agent_frame),
];
