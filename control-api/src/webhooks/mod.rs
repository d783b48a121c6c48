//! Webhooks: Telnyx's envelope, Ed25519 signatures, and durable delivery from the outbox.

pub mod signing;
pub mod worker;

pub use signing::WebhookSigner;
pub use worker::WebhookNotifier;
