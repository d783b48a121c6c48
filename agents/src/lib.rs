//! Bond's agent-signalling adapter: call-centre agents in a browser.
//!
//! An agent's browser holds a signalling socket (JSON text frames,
//! [`protocol`]); once it has registered it is dialable as `agent:<name>`:
//!
//! - call control rings it ([`Agents::ring`]); the browser accepts with its
//!   SDP offer, this adapter makes the WebRTC leg and answers the offer, and
//!   call control answers the call ([`AgentControl::accepted`]). Reject,
//!   hang-up, mute, hold and DTMF come over the same socket ([`handle`]).
//! - the agent also places calls: `call` with the browser's offer makes the
//!   agent's own leg, an incoming call from `agent:<name>` answered and
//!   parked ([`AgentControl::placed`]); the page then dials the customer
//!   through the API with `link_to` that call.
//! - the agent says whether it is ready for callers waiting in queues
//!   (`availability`); the registry knows who is available, busy or not, and
//!   free since when ([`Agents::idle`], [`Agents::statuses`]), and call
//!   control's queues ring the free ones ([`AgentControl::availability_changed`]).
//! - a browser behind a firewall that blocks UDP reaches Bond through a TURN
//!   relay: `registered` carries the ICE servers with credentials made for
//!   the agent ([`turn`]).
//!
//! It owns the registered sessions and the calls on agents ([`Agents`]). It
//! talks to call control only through [`AgentControl`], and must never import
//! the call service, HTTP or the webhook outbox. The socket itself (upgrade,
//! token check, close codes) is the HTTP layer's: it hands each text frame to
//! [`handle`] and sends on what [`AgentSession::messages`] delivers.

mod control;
mod frames;
pub mod protocol;
mod registry;
pub mod turn;

pub use control::AgentControl;
pub use frames::{handle, signed_out};
pub use protocol::{AgentMessage, ClientMessage};
pub use registry::{AgentSession, AgentState, AgentStatus, Agents, Idle, SignedIn};
