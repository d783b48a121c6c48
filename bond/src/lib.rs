//! The `bond` binary's library: the configuration (`bond.toml` and `BOND_*`
//! variables), `bond serve`, which builds the store, the media engine, the
//! speech engines, call control and the SIP stack and puts the HTTP skin in
//! front of them, and `bond admin`.
//!
//! It owns the wiring and nothing else: no handler, no call logic, no SQL. It
//! is the one crate that depends on all the others; none depends on it but the
//! tests and the fuzz targets, which start Bond the way the binary does.

pub mod admin;
pub mod config;
pub mod dev_cert;
mod outgoing_ports;
pub mod serve;
pub mod telemetry;
pub mod tls;

pub use config::Config;
