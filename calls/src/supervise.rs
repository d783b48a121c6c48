//! Supervisors (Telnyx `supervise_call_control_id` + `supervisor_role` on dial,
//! and `switch_supervisor_role`): once the supervisor's call is answered, its
//! leg hears the supervised call and the call bridged with it (`monitor`), and
//! is heard by the supervised call's party (`whisper`) or by both (`barge`).
//! The engine mixes the paths (`media-engine/src/engine/supervise.rs`); the
//! supervisor is dialed in the supervised call's engine. A supervisor's call
//! ends with the call it supervises (`normal_clearing`): the call book says so.

use bond_media_engine::SupervisorRole;

use super::error::CallError;
use super::live::Supervising;
use super::service::CallService;
use bond_store::{CallId, CallRecord};

/// A dial's `supervise_call_control_id` and `supervisor_role`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supervise {
    pub call: CallId,
    pub role: SupervisorRole,
}

/// Telnyx's `supervisor_role` / `role` values.
pub fn supervisor_role(value: &str) -> Option<SupervisorRole> {
    match value {
        "barge" => Some(SupervisorRole::Barge),
        "whisper" => Some(SupervisorRole::Whisper),
        "monitor" => Some(SupervisorRole::Monitor),
        _ => None,
    }
}

impl CallService {
    /// Supervise from the answer (at once for a call answered already).
    pub async fn supervise_from_answer(
        &self,
        supervisor: &CallRecord,
        supervise: Supervise,
    ) -> Result<(), CallError> {
        self.book().supervise(&supervisor.call_control_id, &supervise.call);
        let supervising = Supervising { supervise, started: false };
        self.live.update(&supervisor.call_control_id, |c| c.supervising = Some(supervising));
        if self.answered_already(supervisor).await? {
            self.start_pending_supervision(supervisor).await;
        }
        Ok(())
    }

    /// A supervisor's call was answered: its role starts.
    pub(super) async fn start_pending_supervision(&self, supervisor: &CallRecord) {
        let id = &supervisor.call_control_id;
        let waiting = self.live.read(id, |c| c.supervising.clone().filter(|s| !s.started));
        let Some(Supervising { supervise, .. }) = waiting.flatten() else { return };
        match self.apply_role(id, &supervise).await {
            Ok(()) => {
                let started = Supervising { supervise, started: true };
                self.live.update(id, |c| c.supervising = Some(started));
            }
            Err(e) => tracing::warn!(call = %id, error = ?e, "the supervisor could not join"),
        }
    }

    /// `switch_supervisor_role` on a supervisor's call.
    pub async fn switch_supervisor_role(
        &self,
        supervisor: &CallRecord,
        role: SupervisorRole,
    ) -> Result<(), CallError> {
        let id = &supervisor.call_control_id;
        let Some(Supervising { supervise, started }) =
            self.live.read(id, |c| c.supervising.clone()).flatten()
        else {
            return Err(CallError::invalid("10015", "This call supervises no call.", "/call_control_id"));
        };
        let supervise = Supervise { role, ..supervise };
        if started {
            self.apply_role(id, &supervise).await?;
        }
        self.live.update(id, |c| c.supervising = Some(Supervising { supervise, started }));
        Ok(())
    }

    async fn apply_role(&self, supervisor: &CallId, supervise: &Supervise) -> Result<(), CallError> {
        let (Some(own), Some(watched)) = (self.registry.leg(supervisor), self.registry.leg(&supervise.call))
        else {
            return Err(CallError::Ended);
        };
        self.engine.supervise(own, watched, Some(supervise.role)).await.map_err(CallError::from)
    }
}
