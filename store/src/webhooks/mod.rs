//! Webhooks: Telnyx's envelope, Ed25519 signatures, and durable delivery from the outbox.

pub mod org_keys;
mod partitions;
pub mod signing;
pub mod worker;

pub use org_keys::OrgSigners;
pub use signing::WebhookSigner;
pub use worker::WebhookNotifier;
