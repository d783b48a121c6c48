//! A call's life as the book decides it, carried out. `bond_call_core::CallBook`
//! holds who is answered, up, bridged, linked, supervising and time-limited,
//! and decides what a change means; this file feeds it what happened and does
//! what it says: hang up legs, record ends and their `call.hangup`, bridge a
//! dial on its answer, wake for the next time limit.
//!
//! The book is behind a lock that is never held across an await: each change
//! takes the lock, changes the book, drains its outputs and lets go; only then
//! are the outputs carried out.

use std::sync::MutexGuard;
use std::time::Duration;

use bond_call_core::{CallBook, Output};
use bond_media_engine::rtp::RtpStats;
use bond_media_engine::LegId;
use bond_store::clock::{monotonic, rfc3339_now};
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};

use super::error::CallError;
use super::linked::PendingBridge;
use super::payload;
use super::registry::Ending;
use super::service::{BridgeOptions, CallService};
use super::unrecorded::UnrecordedEnd;

impl CallService {
    /// The book, locked. Never held across an await.
    pub(super) fn book(&self) -> MutexGuard<'_, CallBook> {
        self.book.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Change the book, then carry out what it says.
    pub(super) async fn in_book(&self, change: impl FnOnce(&mut CallBook)) {
        let outputs = self.change_book(change);
        self.carry_out_book(outputs, None).await;
    }

    fn change_book(&self, change: impl FnOnce(&mut CallBook)) -> Vec<Output> {
        let mut book = self.book();
        change(&mut book);
        std::iter::from_fn(|| book.poll_output()).collect()
    }

    /// A new call enters the book, with its leg if it has one, and answered
    /// if it `answered` already (a leg that is up when it is recorded).
    pub(super) fn enter_book(&self, call: &CallId, answered: bool) {
        let has_leg = self.registry.leg(call).is_some();
        let mut book = self.book();
        book.created(call);
        if has_leg {
            book.leg_up(call);
        }
        if answered {
            book.answered(call);
        }
    }

    /// `call` has its leg now.
    pub(super) async fn leg_up(&self, call: &CallId, leg: LegId) {
        self.registry.insert(call, leg);
        self.in_book(|book| book.leg_up(call)).await;
    }

    /// End `call`, and the calls that end with it.
    pub(super) async fn end(&self, call: &CallId, ending: Ending) {
        self.in_book(|book| book.end(call, ending)).await;
    }

    /// `call`'s leg ended on its own (claimed already), with these counters.
    pub(super) async fn media_ended(&self, call: &CallId, ending: Ending, stats: RtpStats) {
        let outputs = self.change_book(|book| book.end(call, ending));
        self.carry_out_book(outputs, Some((call, stats))).await;
    }

    /// The call ends `limit_secs` (at least 1) from now, unless it ends before.
    pub(super) fn limit_time(&self, call: &CallId, limit_secs: i64) {
        let limit = Duration::from_secs(limit_secs.max(1).unsigned_abs());
        self.book().limit_time(call, limit, monotonic());
        self.book_woken.notify_one();
    }

    /// End calls as their time limits run out. Runs as long as Bond does.
    pub async fn run_time_limits(self) {
        loop {
            let woken = self.book_woken.notified();
            let Some(next) = self.book().poll_timeout() else {
                woken.await;
                continue;
            };
            tokio::select! {
                () = tokio::time::sleep_until(next.into()) => {
                    self.in_book(|book| book.handle_timeout(monotonic())).await;
                }
                () = woken => {}
            }
        }
    }

    /// Do what the book said. `media_ended` is a call whose leg is gone
    /// already, with its last counters.
    async fn carry_out_book(&self, outputs: Vec<Output>, media_ended: Option<(&CallId, RtpStats)>) {
        let mut media_ended = media_ended;
        for output in outputs {
            match output {
                Output::End { call, ending, partner } => {
                    let stats = match self.registry.leg(&call) {
                        Some(leg) => {
                            // Claim the leg first: the engine's LegEnded for it is then
                            // ours (handled here), not the event task's.
                            self.registry.remove(leg);
                            self.finish_recording(&call, leg).await;
                            self.engine.hangup(leg).await.unwrap_or_default()
                        }
                        None => match media_ended.take() {
                            Some((ended, stats)) if *ended == call => stats,
                            _ => RtpStats::default(),
                        },
                    };
                    self.drop_trunk(&call, true).await;
                    let end = UnrecordedEnd { call, ending, partner, stats, ended_at: rfc3339_now() };
                    if let Err(e) = self.finish_at(&end).await {
                        if e.is_unavailable() {
                            self.record_end_later(end);
                        } else {
                            tracing::error!(call = %end.call, error = %e, "could not record the end of a call");
                        }
                    }
                }
                Output::Bridge { call, with } => self.bridge_answered_dial(&call, &with).await,
            }
        }
    }

    /// A dial answered with `bridge_on_answer`: bridge it with its linked call
    /// (as a `bridge` the linked call asked for while it rang, if it did).
    async fn bridge_answered_dial(&self, dialed: &CallId, link: &CallId) {
        let pending = self.live.update(dialed, |c| c.pending_bridge.take());
        let records: Result<_, DbError> = async {
            let mut tx = self.store.begin().await?;
            let a = self.call_in(&mut tx, dialed).await?;
            let b = self.call_in(&mut tx, link).await?;
            self.store.commit(tx).await?;
            Ok((a, b))
        }
        .await;
        let bridged = match (records, pending) {
            (Ok((a, b)), None) => self.bridge(&a, &b, BridgeOptions::TRANSFERRED).await,
            (Ok((a, b)), Some(asked)) => self.bridge_as_asked(&b, &a, asked).await,
            (Err(e), _) => Err(e.into()),
        };
        match bridged {
            Ok(()) => {
                self.agents.placed_call_answered(link);
                // It ends the referring call: a task of its own, not inside this book change.
                tokio::spawn(self.clone().referred_call_bridged_later(dialed.clone()));
            }
            Err(e) => tracing::info!(%dialed, %link, error = %e, "bridge on answer failed"),
        }
    }

    /// The `bridge` `asker` asked for with `answered` while it rang.
    async fn bridge_as_asked(
        &self,
        asker: &CallRecord,
        answered: &CallRecord,
        asked: PendingBridge,
    ) -> Result<(), CallError> {
        self.bridge(asker, answered, asked.options).await?;
        if let Some(options) = asked.record {
            self.start_recording(asker, options).await?;
        }
        Ok(())
    }

    /// Record that a call ended (once) with its `call.hangup`, and that
    /// `partner` is no longer bridged with it; release what the adapters hold.
    pub(super) async fn finish(
        &self,
        call_control_id: &CallId,
        ending: Ending,
        partner: Option<&CallId>,
        stats: &RtpStats,
    ) -> Result<(), DbError> {
        let end = UnrecordedEnd {
            call: call_control_id.clone(),
            ending,
            partner: partner.cloned(),
            stats: stats.clone(),
            ended_at: rfc3339_now(),
        };
        self.finish_at(&end).await
    }

    /// [`finish`](Self::finish) a call that ended at `end.ended_at`.
    pub(super) async fn finish_at(&self, end: &UnrecordedEnd) -> Result<(), DbError> {
        let UnrecordedEnd { call: call_control_id, ending, partner, stats, ended_at } = end;
        let (ending, partner) = (*ending, partner.as_ref());
        let mut tx = self.store.begin().await?;
        let ended =
            self.store.mark_ended(&mut tx, call_control_id, ending.cause, ending.source, ended_at).await?;
        let Some(mut call) = ended else {
            return Ok(());
        };
        self.end_playbacks(&mut tx, &call).await?;
        self.end_gather(&mut tx, &call).await?;
        if let Some(total) = self.end_assistant(&mut tx, &call).await? {
            call.assistant_usage = Some(total);
        }
        self.end_queue(&mut tx, &call).await?;
        self.end_conference_party(&mut tx, &call).await?;
        self.offer_ended(&call, ending);
        let body = payload::hangup(&call, ending.cause, ending.source, ended_at, stats);
        payload::record_quality(stats);
        self.enqueue(&mut tx, &call, "call.hangup", body).await?;
        self.store.release_sip_slot(&mut tx, call_control_id).await?;
        if let Some(partner) = partner {
            self.store.set_bridged(&mut tx, partner, None).await?;
        }
        // Its stream and speech tasks forget theirs as they wind down.
        let (invited, dropping) = self.live.update(call_control_id, |c| {
            c.amd_mode = None;
            c.pending_amd = None;
            c.pending_stream = None;
            c.supervising = None;
            c.pending_bridge = None;
            (c.pending_join.take(), c.voicemail_drop.take())
        });
        self.telnyx.release(call_control_id, true);
        self.release_sip(call_control_id);
        self.agents.released(call_control_id, ending.cause, monotonic());
        self.store.commit(tx).await?;
        self.notifier.notify();
        self.referral_ended(call_control_id, ending, call.answered_at.is_some()).await;
        self.ringing_ended(call_control_id).await;
        self.stop_ringback(call_control_id).await;
        self.end_early_media(call_control_id).await;
        if let Some(invited) = invited {
            self.invite_unanswered(invited).await;
        }
        if let Some(dropping) = dropping {
            self.voicemail_hung_up(dropping).await;
        }
        Ok(())
    }

    /// End every live call (Bond is stopping); each gets its `call.hangup`.
    pub async fn end_all(&self) {
        for call in self.registry.calls_snapshot() {
            self.end(&call, Ending::UNSPECIFIED).await;
        }
    }

    /// Stop the speech engines' own threads (whisper's workers), after the
    /// calls have ended: Bond is stopping.
    pub async fn stop_speech_engines(&self) {
        if let Ok(engines) = &self.speech {
            let stt = engines.stt.clone();
            let _ = tokio::task::spawn_blocking(move || stt.stop()).await;
        }
    }
}
