//! `gather` and `gather_stop` (Telnyx Call Control): collect the digits a
//! call's party presses. The rules are the I/O-free [`Gather`] machine
//! (`machine.rs`); this side keeps one per call in its `LiveCall`, feeds it
//! the engine's digits (`events.rs`) and the time, wakes it at its deadline,
//! and writes `call.gather.ended` when it ends: by itself, stopped, replaced
//! by a new gather (`cancelled`), or with the call (`call_hangup`, in the
//! transaction that writes `call.hangup`, just before it).

mod machine;

use bond_store::clock::monotonic;
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde_json::{Map, Value};

use super::error::CallError;
use super::payload;
use super::service::CallService;
pub use machine::{Gather, GatherSpec, GatherStatus, Gathered};

/// A call's running gather, and which it is (a timer woken for an earlier
/// one finds another id and leaves).
#[derive(Debug)]
pub(crate) struct Running {
    id: u64,
    gather: Gather,
}

impl CallService {
    /// `gather`: collect digits from now on (a gather already running ends `cancelled`).
    pub async fn start_gather(&self, call: &CallRecord, spec: GatherSpec) -> Result<(), CallError> {
        self.live_leg(call)?;
        if !self.answered_already(call).await? {
            return Err(CallError::invalid(
                "90015",
                "Digits can be gathered only on an answered call; answer it first.",
                "/call_control_id",
            ));
        }
        let id = self.next_id();
        let running = Running { id, gather: Gather::new(spec, monotonic()) };
        let earlier = self.live.update(&call.call_control_id, |c| c.gather.replace(running));
        if let Some(earlier) = earlier {
            self.gather_ended(&call.call_control_id, earlier.gather.stop(GatherStatus::Cancelled)).await?;
        }
        self.wake_gather(call.call_control_id.clone(), id);
        Ok(())
    }

    /// `gather_stop`: end the running gather `cancelled`; none running is not an error.
    pub async fn stop_gather(&self, call: &CallRecord) -> Result<(), CallError> {
        self.live_leg(call)?;
        match self.live.update(&call.call_control_id, |c| c.gather.take()) {
            Some(running) => {
                let ended = running.gather.stop(GatherStatus::Cancelled);
                Ok(self.gather_ended(&call.call_control_id, ended).await?)
            }
            None => Ok(()),
        }
    }

    /// A digit the call's party pressed, for its gather if one runs.
    pub(super) async fn gather_digit(&self, call: &CallId, digit: char) {
        let now = monotonic();
        let ended = self.live.update(call, |c| {
            let ended = c.gather.as_mut()?.gather.digit(now, digit);
            if ended.is_some() {
                c.gather = None;
            }
            ended
        });
        if let Some(ended) = ended {
            if let Err(e) = self.gather_ended(call, ended).await {
                tracing::error!(%call, error = %e, "could not record the end of a gather");
            }
        }
    }

    /// Sleep to gather `id`'s deadline and ask it again, until it ends or is gone.
    fn wake_gather(&self, call: CallId, id: u64) {
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let ours = |c: &super::live::LiveCall| {
                    c.gather.as_ref().filter(|r| r.id == id).map(|r| r.gather.deadline())
                };
                let Some(deadline) = service.live.read(&call, ours).flatten() else { return };
                tokio::time::sleep_until(deadline.into()).await;
                let ended = service.live.update(&call, |c| {
                    let running = c.gather.as_mut().filter(|r| r.id == id)?;
                    let ended = running.gather.poll(monotonic());
                    if ended.is_some() {
                        c.gather = None;
                    }
                    ended
                });
                if let Some(ended) = ended {
                    if let Err(e) = service.gather_ended(&call, ended).await {
                        tracing::error!(%call, error = %e, "could not record the end of a gather");
                    }
                    return;
                }
            }
        });
    }

    async fn gather_ended(&self, call: &CallId, ended: Gathered) -> Result<(), DbError> {
        self.call_event(call, "call.gather.ended", ended_fields(&ended)).await
    }

    /// The call is ending: its gather ends `call_hangup`, written in `tx`.
    pub(super) async fn end_gather(&self, tx: &mut bond_store::Tx, call: &CallRecord) -> Result<(), DbError> {
        let Some(running) = self.live.update(&call.call_control_id, |c| c.gather.take()) else {
            return Ok(());
        };
        let mut body = payload::base(call);
        body.extend(ended_fields(&running.gather.stop(GatherStatus::CallHangup)));
        self.enqueue(tx, call, "call.gather.ended", Value::Object(body)).await
    }
}

fn ended_fields(ended: &Gathered) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("digits".into(), ended.digits.clone().into());
    fields.insert("status".into(), ended.status.as_str().into());
    fields
}
