//! Calls: destinations, the registry of live legs, webhook payloads and the call-control service.

pub mod action;
mod agent_calls;
pub mod amd;
pub mod country;
pub mod endpoint;
pub mod error;
mod events;
mod linked;
pub mod payload;
mod playback;
mod recording;
pub mod recording_links;
pub mod recording_storage;
mod registry;
mod service;
mod sip_calls;
mod speech;
mod streaming;
mod supervise;
pub mod telnyx;

pub use action::Action;
pub use agent_calls::{AgentMessage, AgentSession};
pub use amd::{AmdMode, AmdRequest};
pub use endpoint::{Endpoint, LoopKind};
pub use error::CallError;
pub use linked::Link;
pub use playback::{playback_request, speak_request, stop_all, AudioSource, PlaybackRequest};
pub use recording::RecordOptions;
pub use recording_links::RecordingLinks;
pub use registry::{CallRegistry, Ending};
pub use service::{BridgeOptions, CallFiles, CallService, Dial, Hold, StreamCall};
pub use sip_calls::{IncomingSip, SipCandidates};
pub use speech::{SpeechSettings, Tracks, TranscriptionRequest, TranslationRequest};
pub use streaming::stream_request;
pub use supervise::{supervisor_role, Supervise};
