//! Carrying out a parsed [`Action`] on a live call: one arm per action, each
//! a core method of [`CallService`].

use super::{Action, Command};

/// What an action answers beside `"result": "ok"`: the conversation an
/// `ai_assistant_start` or `ai_assistant_join` started or joined.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acted {
    pub conversation_id: Option<String>,
}
use crate::error::CallError;
use crate::linked::PendingBridge;
use crate::service::CallService;
use bond_store::CallRecord;

impl CallService {
    /// Carry out `command` on `call` (the caller has checked who may).
    pub async fn act(&self, call: &CallRecord, command: Command) -> Result<Acted, CallError> {
        if !call.is_alive() {
            return Err(CallError::Ended);
        }
        self.carried_here(call).await?;
        let updated;
        let call = match &command.client_state {
            Some(client_state) => {
                let set =
                    self.store.set_client_state(&call.organization_id, &call.call_control_id, client_state);
                updated = set.await?.ok_or(CallError::Ended)?;
                &updated
            }
            None => call,
        };
        let conversation_id = match command.action {
            Action::AssistantStart(start) => Some(self.start_assistant(call, *start).await?),
            Action::AssistantJoin(join) => Some(self.join_assistant(call, *join).await?),
            action => {
                self.carry(call, action).await?;
                None
            }
        };
        Ok(Acted { conversation_id })
    }

    /// The actions that answer nothing beside `"result": "ok"`.
    async fn carry(&self, call: &CallRecord, action: Action) -> Result<(), CallError> {
        match action {
            Action::Answer { stream } => {
                self.answer(call).await?;
                match stream {
                    Some(request) => self.start_streaming(call, request).await,
                    None => Ok(()),
                }
            }
            Action::Reject { cause } => self.reject(call, cause.as_deref()).await,
            Action::Hangup => self.hangup(call).await,
            Action::Bridge { with, options, record, ringtone } => {
                let pointer = "/call_control_id_to_bridge_with";
                let other = self.store.get_call(&call.organization_id, &with).await?.ok_or_else(|| {
                    CallError::invalid("10005", "No call with that call_control_id_to_bridge_with.", pointer)
                })?;
                if !other.is_alive() {
                    return Err(CallError::Ended);
                }
                if let Some(tone) = ringtone.filter(|_| other.answered_at.is_none()) {
                    let pending = PendingBridge { options, record };
                    return self.bridge_on_answer_ringing(call, &other, pending, tone).await;
                }
                self.bridge(call, &other, options).await?;
                if let Some(options) = record {
                    self.start_recording(call, options).await?;
                }
                Ok(())
            }
            Action::SendDtmf { digits, timing } => self.send_dtmf(call, digits, timing).await,
            Action::RecordStart(options) => self.start_recording(call, options).await.map(|_| ()),
            Action::RecordStop => self.stop_recording(call).await,
            Action::RecordPause(paused) => self.pause_recording(call, paused).await,
            Action::Hold(with) => self.hold(call, with.as_hold()).await,
            Action::Mute { inbound, outbound } => self.set_mute(call, inbound, outbound).await,
            Action::StreamingStart(request) => self.start_streaming(call, request).await,
            Action::StreamingStop { stream_id } => self.stop_streaming(call, stream_id.as_deref()).await,
            Action::PlaybackStart(request) | Action::Speak(request) => {
                self.start_playback(call, request).await
            }
            Action::PlaybackStop { overlay, all } => self.stop_playback(call, overlay, all).await,
            Action::TranscriptionStart(mut request) => {
                let engines = self.speech_engine_names();
                request.engine = super::fields::transcription_engine(request.engine.as_deref(), &engines)?;
                self.start_transcription(call, request).await
            }
            Action::TranscriptionStop => self.stop_transcription(call).await,
            Action::TranslationStart(asked) => {
                let defaults = self.store.voice_config(&call.organization_id).await?;
                let request = asked.with_defaults(
                    defaults.translate_from.as_deref(),
                    defaults.translate_to.as_deref(),
                    defaults.voice_to_voice,
                )?;
                self.start_translation(call, request).await
            }
            Action::TranslationStop => self.stop_translation(call).await,
            Action::SwitchSupervisorRole(role) => self.switch_supervisor_role(call, role).await,
            // Its `client_state` was stored above.
            Action::ClientStateUpdate => Ok(()),
            Action::Gather(spec) => self.start_gather(call, spec).await,
            Action::GatherUsing(using) => self.start_prompted_gather(call, *using).await,
            Action::GatherStop => self.stop_gather(call).await,
            Action::Transfer(transfer) => self.transfer(call, *transfer, None).await,
            Action::Enqueue { name, ask } => self.enqueue_call(call, &name, ask).await,
            Action::LeaveQueue => self.leave_queue(call).await,
            Action::Refer(refer) => self.refer(call, refer).await,
            // `act` takes these itself, for their conversation id.
            Action::AssistantStart(start) => self.start_assistant(call, *start).await.map(drop),
            Action::AssistantJoin(join) => self.join_assistant(call, *join).await.map(drop),
            Action::AssistantStop => self.stop_assistant(call).await,
            Action::AssistantAddMessages { messages, respond } => {
                self.add_assistant_messages(call, messages, respond).await
            }
        }
    }
}
