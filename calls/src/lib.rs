//! Bond's call control. It owns the per-call service ([`CallService`]: dial,
//! answer, bridge, hang up, record, stream, play, supervise, gather, transfer,
//! queue, conferences, and the webhook each change is written with), the typed [`Action`]s the API's call-control
//! commands become and the [`CallError`]s they answer, destinations, and the
//! registry of live legs. It commands the media engine through its handle and
//! keeps what it records in `bond-store`. What a call's life means for the
//! others (ends that cascade, bridges on answer, time limits) is decided by
//! `bond-call-core`'s I/O-free `CallBook`; `lifecycle.rs` feeds it and carries
//! out what it says.
//!
//! The leg adapters sit below it and report through traits they define:
//! `CallService` implements `bond_sip::CallControl` (`sip_calls.rs`),
//! `bond_streams::StreamControl` (`stream_calls.rs`) and
//! `bond_agents::AgentControl` (`agent_calls.rs`), acts on SIP calls through
//! `bond_sip::SipCalls` and rings agents through `bond_agents::Agents`.
//!
//! It must never import axum, the HTTP layer or rsipstack: errors are
//! [`CallError`]s, which `control-api` maps to statuses and Telnyx's error
//! bodies, and SIP messages are `bond-sip`'s.

pub mod action;
mod agent_calls;
pub mod amd;
mod amd_words;
pub mod assistant;
pub mod conference;
pub mod country;
mod dial;
mod early_media;
pub mod endpoint;
pub mod error;
mod events;
pub mod gather;
mod lifecycle;
mod linked;
mod live;
mod membership;
mod node_cpu;
pub mod payload;
pub mod placement;
mod playback;
pub mod queue;
mod recording;
pub mod recording_links;
pub mod recording_storage;
pub mod refer;
mod registry;
mod ringback;
mod service;
mod sip_calls;
mod speech;
mod stream_calls;
mod streaming;
mod supervise;
pub mod telnyx;
pub mod transfer;
pub mod trunk;
mod unrecorded;

pub use action::{Acted, Action, Command};
pub use amd::{AmdMode, AmdRequest};
pub use dial::{check_from, check_limits, Dial};
pub use endpoint::{Endpoint, LoopKind};
pub use error::CallError;
pub use linked::Link;
pub use membership::{NodeRole, RENEW_EVERY as LEASE_RENEWED_EVERY};
pub use playback::{playback_request, speak_request, stop_all, AudioSource, PlaybackRequest};
pub use recording::RecordOptions;
pub use recording_links::RecordingLinks;
pub use registry::{CallRegistry, Ending};
pub use service::{BridgeOptions, CallFiles, CallService, Hold};
pub use speech::{SpeechSettings, Tracks, TranscriptionRequest, TranslationRequest, DEFAULT_EARLY_LOOK};
pub use streaming::stream_request;
pub use supervise::{supervisor_role, Supervise};
