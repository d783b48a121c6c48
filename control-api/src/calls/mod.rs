//! Calls: destinations, the registry of live legs, webhook payloads and the call-control service.

pub mod country;
pub mod endpoint;
pub mod payload;
mod registry;
mod service;

pub use endpoint::{Endpoint, LoopKind};
pub use registry::{CallRegistry, Ending};
pub use service::{BridgeOptions, CallService, Dial};
