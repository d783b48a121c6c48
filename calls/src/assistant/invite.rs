//! The `invite` tool (Telnyx's multi-party calls): the model names a target,
//! Bond dials it for the agent's call (sharing its session, cancelled if it
//! ends first) and, when it answers, it joins the conversation as
//! `ai_assistant_join` would join it (`join.rs`), by the target's name. The
//! model reads at once that the target rings; when it joins, the agent goes
//! on; when it does not answer, the model is told so and answers. With
//! `voicemail_detection`, the answered call is screened first (premium
//! answering-machine detection): a person (or a verdict short of a machine:
//! when unsure, a person) joins; a voicemail is hung up on, and the model is
//! told.

use bond_media_engine::amd::{AmdConfig, AmdEvent, Verdict};
use bond_store::{CallId, CallRecord};
use serde_json::json;

use super::join::{Joining, OnHangup, PendingJoin};
use super::tools::Outcome;
use super::{Input, Message, Role};
use crate::amd::{AmdMode, AmdRequest};
use crate::error::CallError;
use crate::registry::Ending;
use crate::service::CallService;
use crate::transfer::Transfer;

impl CallService {
    /// The model asked to invite `name` (`target`) into `host`'s conversation:
    /// what it reads back.
    pub(super) async fn invite(
        &self,
        host: &CallRecord,
        name: &str,
        target: &Transfer,
        screen: bool,
    ) -> Outcome {
        match self.dial_invited(host, name, target, screen).await {
            Ok(()) => Outcome {
                content: json!({ "invited": name, "status": "ringing" }).to_string(),
                ..Outcome::done()
            },
            Err(e) => Outcome::error(&e.to_string()),
        }
    }

    async fn dial_invited(
        &self,
        host: &CallRecord,
        name: &str,
        target: &Transfer,
        screen: bool,
    ) -> Result<(), CallError> {
        let amd = screen.then(|| AmdRequest { mode: AmdMode::Premium, config: AmdConfig::default() });
        let dialed = self.dial_linked(host, target.clone(), false, amd).await?;
        let id = dialed.call_control_id;
        let joining = Joining {
            call: id.clone(),
            name: Some(name.to_owned()),
            on_hangup: OnHangup::ContinueConversation,
        };
        self.live.update(&id, |c| {
            let screened = screen.then_some(false);
            c.pending_join = Some(PendingJoin {
                host: host.call_control_id.clone(),
                organization_id: host.organization_id.clone(),
                joining,
                screened,
            })
        });
        // The call may have been answered (a built-in leg is, as it is dialed)
        // or refused before the join waited for it.
        let Some(now) = self.store.get_call(&host.organization_id, &id).await? else {
            return Ok(());
        };
        if now.answered_at.is_some() {
            self.start_pending_join(&now).await;
        } else if now.ended_at.is_some() {
            if let Some(pending) = self.live.update(&id, |c| c.pending_join.take()) {
                self.invite_unanswered(pending).await;
            }
        }
        Ok(())
    }

    /// `call` was answered: if an agent invited it, it joins the agent's
    /// conversation, or waits for the screening's verdict.
    pub(crate) async fn start_pending_join(&self, call: &CallRecord) {
        let pending = self.live.update(&call.call_control_id, |c| match &mut c.pending_join {
            Some(PendingJoin { screened: Some(answered), .. }) => {
                *answered = true;
                None
            }
            _ => c.pending_join.take(),
        });
        if let Some(pending) = pending {
            self.join_invited(call, pending).await;
        }
    }

    /// The screening of an invited call reached a verdict: a machine's call
    /// is hung up and the model told; anything else joins.
    pub(crate) async fn invite_screened(&self, call: &CallId, event: &AmdEvent) {
        let AmdEvent::Detection { verdict, .. } = event else { return };
        let screened = |c: &mut crate::live::LiveCall| match &c.pending_join {
            Some(PendingJoin { screened: Some(true), .. }) => c.pending_join.take(),
            _ => None,
        };
        let Some(pending) = self.live.update(call, screened) else { return };
        if matches!(verdict, Verdict::Machine | Verdict::Fax) {
            let name = pending.joining.name.unwrap_or_default();
            self.end(call, Ending::HUNG_UP).await;
            let what = format!("{name} did not answer: a voicemail did, so the invitation was stopped.");
            self.tell_invite_failed(&pending.host, &what).await;
            return;
        }
        match self.store.get_call(&pending.organization_id, call).await {
            Ok(Some(record)) => self.join_invited(&record, pending).await,
            _ => self.invite_unanswered(pending).await,
        }
    }

    async fn join_invited(&self, call: &CallRecord, pending: PendingJoin) {
        let name = pending.joining.name.clone().unwrap_or_default();
        let joined = async {
            let host =
                self.store.get_call(&call.organization_id, &pending.host).await?.ok_or(CallError::Ended)?;
            let (record, leg) = self.joinable(&host, &pending.joining, "/participant/id").await?;
            self.add_participant(&host, record, leg, pending.joining, true).await
        };
        if let Err(e) = joined.await {
            tracing::info!(call = %call.call_control_id, error = %e, "an invited call could not join its conversation");
            self.tell_invite_failed(
                &pending.host,
                &format!("{name} answered but could not join the call: {e}."),
            )
            .await;
        }
    }

    /// An invited call ended before it was answered: the agent is told, and answers.
    pub(crate) async fn invite_unanswered(&self, pending: PendingJoin) {
        let name = pending.joining.name.unwrap_or_default();
        self.tell_invite_failed(&pending.host, &format!("{name} did not answer the invitation.")).await;
    }

    async fn tell_invite_failed(&self, host: &CallId, what: &str) {
        // It may be speaking (the tool's "ringing" answer): it answers once free.
        let told = Input::Told(vec![Message::new(Role::System, what)]);
        // No agent any more: nobody to tell.
        let _ = self.tell_assistant(host, told).await;
    }
}
