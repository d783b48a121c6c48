//! Bond's media engine: an I/O-free core and the tokio layer that drives it.
//!
//! # The run loop
//!
//! The core ([`Engine`], [`leg::Leg`], the [`rtp`] pieces) never does I/O and
//! never reads the clock. Every entry point takes `now: Instant` and input; the
//! caller then drains output and asks when to come back:
//!
//! ```text
//! loop {
//!     engine.handle_receive(now, leg, &datagram)   // or
//!     engine.handle_timeout(now)
//!     while let Some(out) = engine.poll_output() { send / publish }
//!     sleep until engine.poll_timeout()
//! }
//! ```
//!
//! This is str0m's model. The [`runtime`] module is the one real driver
//! (sockets, tasks, tokio's clock); [`sim`] is another that jumps simulated
//! time from deadline to deadline over a seeded lossy network, so tests push
//! minutes of audio through two legs in milliseconds.
//!
//! # Time
//!
//! Legs tick every 20 ms from their creation instant; a late wake-up is
//! absorbed by scheduling the next tick from the nominal grid, not from `now`.
//! A `clippy.toml` rule forbids `Instant::now` outside the runtime and `sim::epoch`.
//!
//! # Panics
//!
//! Nothing that arrives from the network panics: malformed datagrams become
//! [`EngineError`]s and are counted in the leg's statistics. The remaining
//! `expect`s name the invariant they rely on.

pub mod amd;
pub mod engine;
mod error;
pub mod event;
pub mod ids;
pub mod leg;
pub mod rtp;
pub mod runtime;
pub mod sdp;
pub mod sim;
pub mod timer;
pub mod webrtc;

pub use engine::{
    AudioControls, DtmfPassing, Engine, EngineOutput, Offload, PartyRole, Relay, Relayed, StreamOutput,
    SupervisorRole, CONFERENCE_CLIP_RATE,
};
pub use error::EngineError;
pub use event::{DtmfSource, EngineEvent, HangupCause};
pub use ids::LegId;
