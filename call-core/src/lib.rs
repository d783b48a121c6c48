//! Bond's call-control core: the vocabulary every other control-plane crate
//! speaks (a call's [`CallId`], how it [`Ending`]s) and the [`CallBook`], the
//! I/O-free state machine of the live calls' lifecycle: which calls are
//! answered and have legs, which are bridged with which, which dials wait to
//! be bridged on answer, which calls supervise which, and when each call's
//! time limit runs out. It decides what a change means (ending one call ends
//! its partner, cancels the dials linked to it and ends its supervisors; an
//! answered dial is bridged with its linked call) and says so as [`Output`]s.
//!
//! It works like the media engine: it takes the time (`now`) and an input,
//! and its owner polls it for what to carry out ([`CallBook::poll_output`])
//! and for when to wake it ([`CallBook::poll_timeout`]). `bond-calls` owns
//! one behind a lock and carries out its outputs (the store's writes, the
//! webhooks, the engine's commands); the tests here drive it with simulated
//! time.
//!
//! It must never import tokio, the store, the media engine, the leg adapters
//! or HTTP: it reads no clock and does no I/O.

mod book;
mod call_id;
mod ending;

pub use book::{CallBook, Output, Refusal};
pub use call_id::CallId;
pub use ending::Ending;
