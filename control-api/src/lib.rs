//! Bond's HTTP skin. It owns the routes, who a request is (API keys, agent
//! and supervisor tokens, roles, revocation), the OpenAPI document, turning
//! `CallError`s and store errors into HTTP answers, the agent and supervisor
//! pages, and `bond webhooks tail`'s receiver.
//!
//! It is the only crate that knows axum. It holds no call, SIP, stream,
//! speech or database logic: those are `bond-calls`, `bond-speech` and
//! `bond-store`. It never imports the speech engines or the configuration:
//! the `bond` crate builds an `AppState` and hands it to `app`.

pub mod agent_token;
pub mod auth;
pub mod http;
pub mod revocation;
pub mod state;
pub mod tail;

pub use http::app;
