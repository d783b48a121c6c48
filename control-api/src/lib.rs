//! Bond's control plane: configuration, persistence, the HTTP API, and the
//! `bond` binary that runs it all around the media engine.
//!
//! The control plane never touches media: it sends commands to the engine
//! through an [`EngineHandle`](bond_media_engine::runtime::EngineHandle) and
//! records what the engine's events say.

pub mod admin;
pub mod agent_token;
pub mod auth;
pub mod config;
pub mod http;
pub mod revocation;
pub mod serve;
pub mod state;
pub mod tail;
pub mod telemetry;

pub use config::Config;
pub use http::app;
