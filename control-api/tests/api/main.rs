//! The control plane's integration tests, one binary: each module drives the
//! router (and the engine beneath it) as an application would, on SQLite and,
//! with BOND_TEST_DATABASE_URL, on Postgres. One binary rather than one per file:
//! each test binary links the whole service (about 200 MB in a debug build).

mod agent_confinement;
mod agent_turn;
mod agents_api;
mod amd_api;
mod api_policies;
mod call_control_api;
mod common;
mod conference_api;
mod gather_api;
mod health_endpoints;
mod playback_api;
mod recording_storage;
mod recordings_api;
mod socket_revocation;
mod speech_api;
mod supervise_api;
mod transfer_api;
mod webhook_delivery;
