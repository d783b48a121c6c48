//! The `invite` tool (Telnyx's multi-party calls): the model names a target,
//! Bond dials it for the agent's call (sharing its session, cancelled if it
//! ends first) and, when it answers, it joins the conversation as
//! `ai_assistant_join` would join it (`join.rs`), by the target's name. The
//! model reads at once that the target rings; when it joins, the agent goes
//! on; when it does not answer, the model is told so and answers. With
//! `voicemail_detection`, the answered call is screened first (premium
//! answering-machine detection): a person (or a verdict short of a machine:
//! when unsure, a person) joins; a voicemail is hung up on, at once or once
//! a message was spoken after its greeting, and the model is told.
//!
//! A `transfer` tool with `voicemail_detection` is dialed the same way: the
//! agent goes on while it rings and is screened, a voicemail is treated as
//! above, and a person gets the call: the agent ends (`assistant_transfer`)
//! and the agent's call is bridged with theirs.

use bond_codecs::ringtone::Ringtone;
use bond_media_engine::amd::{AmdEvent, Verdict};
use bond_speech::tts::TTS_RATE;
use bond_store::{CallId, CallRecord};
use serde_json::json;

use super::join::{Joining, OnHangup, PendingJoin, VoicemailDrop};
use super::tools::Outcome;
use super::OnVoicemail;
use super::{Input, Message, Role};
use crate::amd::{AmdMode, AmdRequest};
use crate::error::CallError;
use crate::registry::Ending;
use crate::service::CallService;
use crate::transfer::Transfer;

impl CallService {
    /// The model asked to invite `name` (`target`) into `host`'s conversation,
    /// or to transfer `host` to it once screened (`transfer`: the ringtone
    /// `host` hears meanwhile): what it reads back.
    pub(super) async fn invite(
        &self,
        host: &CallRecord,
        name: &str,
        target: &Transfer,
        voicemail: Option<OnVoicemail>,
        transfer: Option<&'static Ringtone>,
    ) -> Outcome {
        let asked = if transfer.is_some() { "transferring" } else { "invited" };
        match self.dial_invited(host, name, target, voicemail, transfer).await {
            Ok(()) => Outcome {
                content: json!({ asked: name, "status": "ringing" }).to_string(),
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
        voicemail: Option<OnVoicemail>,
        transfer: Option<&'static Ringtone>,
    ) -> Result<(), CallError> {
        let amd = voicemail.as_ref().map(|_| AmdRequest::defaults(AmdMode::Premium));
        let dialed = self.dial_linked(host, target.clone(), false, amd).await?;
        let id = dialed.call_control_id;
        let joining = Joining {
            call: id.clone(),
            name: Some(name.to_owned()),
            on_hangup: OnHangup::ContinueConversation,
        };
        self.live.update(&id, |c| {
            c.pending_join = Some(PendingJoin {
                host: host.call_control_id.clone(),
                organization_id: host.organization_id.clone(),
                joining,
                screened: voicemail,
                transfer: transfer.is_some(),
            })
        });
        if let Some(tone) = transfer {
            // The caller hears it ring, and screened, until the bridge (or the end of the dial).
            if let Err(e) = self.ring_back_for_dial(host, &id, tone, false).await {
                tracing::info!(call = %host.call_control_id, error = %e, "no ringback for a screened transfer");
            }
        }
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
        let pending = self.live.update(&call.call_control_id, |c| match &c.pending_join {
            Some(PendingJoin { screened: Some(_), .. }) => None,
            _ => c.pending_join.take(),
        });
        if let Some(pending) = pending {
            self.join_invited(call, pending).await;
        }
    }

    /// What the screening of an invited call found: at its verdict, a
    /// machine's call is hung up (or a message left first) and the model
    /// told, and anything else joins; at the end of a voicemail's greeting,
    /// the message is spoken.
    pub(crate) async fn invite_screened(&self, call: &CallId, event: &AmdEvent) {
        let verdict = match event {
            AmdEvent::Detection { verdict, .. } => verdict,
            AmdEvent::GreetingEnded { .. } => return self.leave_message(call).await,
        };
        let screened = |c: &mut crate::live::LiveCall| match &c.pending_join {
            Some(PendingJoin { screened: Some(_), .. }) => c.pending_join.take(),
            _ => None,
        };
        let Some(pending) = self.live.update(call, screened) else { return };
        if matches!(verdict, Verdict::Machine | Verdict::Fax) {
            let asked = pending.asked();
            let name = pending.joining.name.unwrap_or_default();
            match pending.screened {
                // The detector watches a machine's greeting for its end (`leave_message`); a fax's it does not.
                Some(OnVoicemail::LeaveMessage(message)) if *verdict == Verdict::Machine => {
                    let drop = VoicemailDrop { host: pending.host, name, message, clip: None };
                    self.live.update(call, |c| c.voicemail_drop = Some(drop));
                }
                _ => {
                    self.end(call, Ending::HUNG_UP).await;
                    let what = format!("{name} did not answer: a voicemail did, so the {asked} was stopped.");
                    self.tell_invite_failed(&pending.host, &what).await;
                }
            }
            return;
        }
        match self.store.get_call(&pending.organization_id, call).await {
            Ok(Some(record)) if pending.transfer => self.transfer_screened(&record, pending).await,
            Ok(Some(record)) => self.join_invited(&record, pending).await,
            _ => self.invite_unanswered(pending).await,
        }
    }

    /// A person answered a screened transfer: the agent ends, as a transfer
    /// ends it, and its call is bridged with theirs (each hangs up with the
    /// other, as after the `transfer` action). If the bridge fails, the
    /// transferred call stays up and the person's call is hung up.
    async fn transfer_screened(&self, call: &CallRecord, pending: PendingJoin) {
        let _ = self.tell_assistant(&pending.host, Input::Transferred).await;
        let bridged = async {
            let host =
                self.store.get_call(&call.organization_id, &pending.host).await?.ok_or(CallError::Ended)?;
            self.bridge(&host, call, crate::service::BridgeOptions::TRANSFERRED).await
        };
        if let Err(e) = bridged.await {
            tracing::info!(call = %call.call_control_id, error = %e, "a screened transfer could not bridge");
            self.end(&call.call_control_id, Ending::HUNG_UP).await;
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

    /// The voicemail's greeting ended: the message is spoken (in the agent's
    /// language), synthesized on a task of its own so that the engine's
    /// events wait for no voice.
    async fn leave_message(&self, call: &CallId) {
        let waiting = |c: &crate::live::LiveCall| {
            let drop = c.voicemail_drop.as_ref().filter(|d| d.clip.is_none())?;
            Some((drop.message.clone(), drop.host.clone()))
        };
        let Some((message, host)) = self.live.read(call, waiting).flatten() else { return };
        let language = self.live.read(&host, |h| h.assistant.as_ref().map(|a| a.language.clone()));
        let language = language.flatten().unwrap_or_else(|| "en".into());
        let (service, call) = (self.clone(), call.clone());
        tokio::spawn(async move {
            let played = async {
                let Ok(engines) = &service.speech else { return Err("no speech engines".to_owned()) };
                let spoken = engines.tts.speak(&message, &language, "").await.map_err(|e| e.to_string())?;
                let leg = service.registry.leg(&call).ok_or("the call ended")?;
                // Known before it plays: its end is told to `voicemail_message_ended`.
                let id = service.next_id();
                service.live.update(&call, |c| c.voicemail_drop.as_mut().map(|d| d.clip = Some(id)));
                service.play_samples(leg, &spoken, TTS_RATE, id).await
            };
            if let Err(e) = played.await {
                tracing::info!(%call, error = %e, "a message for an invited call's voicemail could not be spoken");
                service.voicemail_left(&call, false).await;
            }
        });
    }

    /// The engine ended clip `clip`: a message left on a voicemail, if one waits for it.
    pub(crate) async fn voicemail_message_ended(&self, clip: u64) {
        let waiting =
            |c: &crate::live::LiveCall| c.voicemail_drop.as_ref().is_some_and(|d| d.clip == Some(clip));
        for call in self.live.find(waiting) {
            self.voicemail_left(&call, true).await;
        }
    }

    /// The message was spoken (`left`) or could not be: the call is hung up
    /// and the model told.
    async fn voicemail_left(&self, call: &CallId, left: bool) {
        let Some(drop) = self.live.update(call, |c| c.voicemail_drop.take()) else { return };
        self.end(call, Ending::HUNG_UP).await;
        let what = if left { "your message was left on it" } else { "the message could not be left" };
        self.tell_voicemail(&drop, what).await;
    }

    /// The voicemail hung up before the message was left.
    pub(crate) async fn voicemail_hung_up(&self, drop: VoicemailDrop) {
        self.tell_voicemail(&drop, "it hung up before the message was left").await;
    }

    async fn tell_voicemail(&self, drop: &VoicemailDrop, what: &str) {
        let name = &drop.name;
        self.tell_invite_failed(&drop.host, &format!("{name} did not answer: a voicemail did, and {what}."))
            .await;
    }

    /// An invited call ended before it was answered: the agent is told, and answers.
    pub(crate) async fn invite_unanswered(&self, pending: PendingJoin) {
        let name = pending.joining.name.as_deref().unwrap_or_default();
        let what = format!("{name} did not answer the {}.", pending.asked());
        self.tell_invite_failed(&pending.host, &what).await;
    }

    async fn tell_invite_failed(&self, host: &CallId, what: &str) {
        // It may be speaking (the tool's "ringing" answer): it answers once free.
        let told = Input::Told(vec![Message::new(Role::System, what)]);
        // No agent any more: nobody to tell.
        let _ = self.tell_assistant(host, told).await;
    }
}
