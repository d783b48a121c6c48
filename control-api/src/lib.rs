//! Bond's HTTP skin and the `bond` binary. It owns the routes, who a request
//! is (API keys, agent and supervisor tokens, roles, revocation), the OpenAPI
//! document, turning `CallError`s and store errors into HTTP answers, the
//! agent and supervisor pages, the configuration, and `bond serve` / `bond
//! admin`, which wire the engine, the store, the speech engines and call
//! control together.
//!
//! It is the only crate that knows axum. It holds no call, SIP, stream,
//! speech or database logic: those are `bond-calls`, `bond-speech` and
//! `bond-store`.

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
