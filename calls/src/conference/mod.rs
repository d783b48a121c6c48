//! Conferences (Telnyx `/v2/conferences`): calls mixed together by the media
//! engine, each hearing the others. Who is in which conference, and what a
//! participant's leaving means, is an I/O-free book (`book.rs`) kept in memory;
//! this side carries it out:
//!
//! - create: the engine's conference is made beside the creating call's leg
//!   (so it needs no relay between shards), the call joins it, and
//!   `conference.created` and `conference.participant.joined` are written;
//! - join: a call (taken out of its bridge first) joins with a role: a normal
//!   participant, a `monitor` (hears all, heard by none) or a `whisper`
//!   (heard by the `whisper_call_control_ids` only: a coach), muted or held;
//! - mute, hold (Bond's hold tune, or `audio_url`) and their undoing are the
//!   legs' own controls; a participant leaving gets its own state back;
//! - play, speak and stop: clips every participant hears, mixed in by the
//!   engine's conference; their events go to the creator's webhook;
//! - record_start/stop/pause/resume: a built-in monitor leg records what
//!   everyone may hear (`recording.rs`); the conference's end finishes it;
//! - leave (or hang up): `conference.participant.left`. A host
//!   (`end_conference_on_exit`) leaving ends the conference and hangs up the
//!   rest; `soft_end_conference_on_exit` ends it and leaves them up; the last
//!   one out ends it (`all_left`), as does `end` and its time limit
//!   (`duration_minutes`, else four hours); `conference.ended` goes to the creator's webhook.

mod beep;
mod book;
mod recording;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bond_call_core::Ending;
use bond_codecs::dtmf::DtmfDigit;
use bond_media_engine::leg::{DtmfTiming, MediaSource};
use bond_media_engine::{LegId, PartyRole};
use bond_store::clock::rfc3339_now;
use bond_store::db::DbError;
use bond_store::{CallId, CallRecord};
use serde_json::{Map, Value};

pub use beep::Beeps;
pub use book::{Conference, ConferenceError, Conferences, EndReason, Participant, SupervisorRole, Then};

use super::error::CallError;
use super::payload;
use super::playback::AudioSource;
use super::service::CallService;

/// How long a conference lasts without `duration_minutes` (Telnyx: four hours).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(4 * 3600);
/// The most participants a conference may take (Telnyx: 2 to 800, default 250).
pub const DEFAULT_MAX_PARTICIPANTS: usize = 250;

/// The conferences of every organization, shared by the service's clones, and
/// each live one's time-limit task (cancelled when it ends sooner).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConferenceBook(
    Arc<Mutex<Conferences>>,
    Arc<dashmap::DashMap<String, tokio::task::AbortHandle>>,
);

/// `POST /v2/conferences`, past its fields' checks.
#[derive(Debug, Clone)]
pub struct NewConference {
    pub name: String,
    pub max_participants: usize,
    pub duration: Duration,
    pub beeps: Beeps,
    /// `start_conference_on_create` (Telnyx's default: true).
    pub start_on_create: bool,
    /// What participants waiting for the start hear (Bond's hold tune when `None`).
    pub hold_audio_url: Option<String>,
}

/// How a call joins (`join`, and the creator with its defaults).
#[derive(Debug, Clone, Default)]
pub struct Join {
    pub role: SupervisorRole,
    pub whisper_to: Vec<CallId>,
    pub mute: bool,
    pub hold: bool,
    pub hold_audio_url: Option<String>,
    pub end_conference_on_exit: bool,
    pub soft_end_conference_on_exit: bool,
    /// `beep_enabled` for this participant; the conference's when `None`.
    pub beeps: Option<Beeps>,
    /// `start_conference_on_enter`: a conference waiting to start starts with this participant.
    pub start_conference_on_enter: bool,
}

impl CallService {
    /// The conferences, to read at once (never held across an await).
    pub fn conferences(&self) -> MutexGuard<'_, Conferences> {
        // Each change to the book is one step, so a panic elsewhere leaves it whole.
        self.conferences.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Create a conference with `call` in it; returns its id.
    pub async fn create_conference(
        &self,
        call: &CallRecord,
        new: NewConference,
    ) -> Result<String, CallError> {
        let leg = self.answered_leg(call, "a conference").await?;
        if self.conferences().of_call(&call.call_control_id).is_some() {
            return Err(refused(
                ConferenceError::AlreadyIn(call.call_control_id.clone()),
                "/call_control_id",
            ));
        }
        let media = self.engine.near(leg).create_conference().await?;
        let now = rfc3339_now();
        let expires = time::OffsetDateTime::now_utc() + new.duration;
        let conference = Conference {
            id: uuid::Uuid::new_v4().to_string(),
            organization_id: call.organization_id.clone(),
            name: new.name,
            connection_id: call.connection_id.clone(),
            creator: call.call_control_id.clone(),
            created_at: now.clone(),
            updated_at: now,
            expires_at: expires.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            media,
            max_participants: new.max_participants,
            participants: Vec::new(),
            ended: None,
            recorder: None,
            beeps: new.beeps,
            started: new.start_on_create,
            hold_audio_url: new.hold_audio_url,
        };
        let id = self.conferences().create(conference).id.clone();
        self.call_event(&call.call_control_id, "conference.created", conference_fields(&id)).await?;
        if let Err(e) = self.join_conference(&call.organization_id, &id, call, Join::default()).await {
            self.conference_over(&id, EndReason::AllLeft, None, false).await;
            return Err(e);
        }
        self.end_on_time(id.clone(), new.duration);
        Ok(id)
    }

    /// `join`: `call` (out of its bridge, if in one) joins conference `id`.
    pub async fn join_conference(
        &self,
        organization: &str,
        id: &str,
        call: &CallRecord,
        join: Join,
    ) -> Result<(), CallError> {
        let leg = self.answered_leg(call, "a conference").await?;
        let call_id = &call.call_control_id;
        let (media, beeps, wait_with) = {
            let conferences = self.conferences();
            let media = conferences
                .check_join(organization, id, call_id)
                .map_err(|e| refused(e, "/call_control_id"))?;
            let conference = conferences.get_any(id);
            let beeps = join.beeps.or_else(|| conference.map(|c| c.beeps)).unwrap_or_default();
            // Joining a conference that has not started: wait on hold, unless this one starts it.
            let waits = conference.filter(|c| !c.started && !join.start_conference_on_enter);
            (media, beeps, waits.map(|c| c.hold_audio_url.clone()))
        };
        // Out of its bridge or queue first, as a bridge takes a queued call out.
        self.unbridge(call_id).await?;
        self.left_queue(call_id, crate::queue::LeftBecause::Bridged).await?;
        let role = self.party_role(join.role, &join.whisper_to);
        self.engine.join_conference(media, leg, role).await?;
        let controls = async {
            if join.mute {
                self.engine.set_mute(leg, Some(true), None).await?;
            }
            let hold_with = match (&wait_with, join.hold) {
                (_, true) => Some(join.hold_audio_url.clone()),
                (Some(waiting_music), false) => Some(waiting_music.clone()),
                (None, false) => None,
            };
            if let Some(audio_url) = hold_with {
                self.engine.hold(leg, Some(self.hold_source(leg, audio_url).await?)).await?;
            }
            Ok::<(), CallError>(())
        };
        if let Err(e) = controls.await {
            let _ = self.engine.unbridge(leg).await;
            return Err(e);
        }
        let now = rfc3339_now();
        let participant = Participant {
            id: uuid::Uuid::new_v4().to_string(),
            call: call_id.clone(),
            created_at: now.clone(),
            updated_at: now,
            muted: join.mute,
            on_hold: join.hold,
            end_conference_on_exit: join.end_conference_on_exit,
            soft_end_conference_on_exit: join.soft_end_conference_on_exit,
            role: join.role,
            whisper_to: join.whisper_to,
            beeps,
            waiting: wait_with.is_some(),
        };
        self.conferences().join(id, participant);
        self.beep(media, true, beeps.on_enter()).await;
        if join.start_conference_on_enter {
            self.start_conference(id).await;
        }
        self.call_event(call_id, "conference.participant.joined", conference_fields(id)).await?;
        Ok(())
    }

    /// `leave`: `call` leaves conference `id` and stays up.
    /// `beeps` (the `leave`'s `beep_enabled`) overrides the participant's.
    pub async fn leave_conference(
        &self,
        organization: &str,
        id: &str,
        call: &CallId,
        beeps: Option<Beeps>,
    ) -> Result<(), CallError> {
        let check = self.conferences().live(organization, id).map(|c| c.participant(call).is_some());
        match check {
            Ok(true) => {}
            Ok(false) => return Err(refused(ConferenceError::NotIn(call.clone()), "/call_control_id")),
            Err(e) => return Err(refused(e, "/conference_id")),
        }
        let left = self.conferences().leave(call, &rfc3339_now());
        let Some((id, participant, then)) = left else { return Ok(()) };
        if let Some(leg) = self.registry.leg(call) {
            let _ = self.engine.unbridge(leg).await;
        }
        self.beep_exit(&id, beeps.unwrap_or(participant.beeps)).await;
        self.restore(&participant).await;
        self.call_event(call, "conference.participant.left", conference_fields(&id)).await?;
        if let Then::Ends { reason, hang_up } = then {
            self.conference_over(&id, reason, Some(call.clone()), hang_up).await;
        }
        Ok(())
    }

    /// `mute` / `unmute`: the participants named (all when none are) are heard or not.
    pub async fn mute_participants(
        &self,
        organization: &str,
        id: &str,
        calls: &[CallId],
        muted: bool,
    ) -> Result<(), CallError> {
        for call in self.chosen(organization, id, calls)? {
            if let Some(leg) = self.registry.leg(&call) {
                self.engine.set_mute(leg, Some(muted), None).await?;
            }
            self.conferences()
                .update(organization, id, &call, &rfc3339_now(), |p| p.muted = muted)
                .map_err(|e| refused(e, "/call_control_ids"))?;
        }
        Ok(())
    }

    /// `hold` (with `audio_url`, else Bond's hold tune) and `unhold` (`None`).
    pub async fn hold_participants(
        &self,
        organization: &str,
        id: &str,
        calls: &[CallId],
        hold: Option<Option<String>>,
    ) -> Result<(), CallError> {
        for call in self.chosen(organization, id, calls)? {
            if let Some(leg) = self.registry.leg(&call) {
                let source = match &hold {
                    Some(url) => Some(self.hold_source(leg, url.clone()).await?),
                    None => None,
                };
                self.engine.hold(leg, source).await?;
            }
            let on_hold = hold.is_some();
            self.conferences()
                .update(organization, id, &call, &rfc3339_now(), |p| p.on_hold = on_hold)
                .map_err(|e| refused(e, "/call_control_ids"))?;
        }
        Ok(())
    }

    /// `send_dtmf`: `digits` to the participants named (all when none are),
    /// as the call's own `send_dtmf` sends them.
    pub async fn conference_dtmf(
        &self,
        organization: &str,
        id: &str,
        calls: &[CallId],
        digits: Vec<DtmfDigit>,
        timing: DtmfTiming,
    ) -> Result<(), CallError> {
        for call in self.chosen(organization, id, calls)? {
            if let Some(leg) = self.registry.leg(&call) {
                self.engine.send_dtmf(leg, digits.clone(), timing).await?;
            }
        }
        Ok(())
    }

    /// `update`: who hears `call` from now on.
    pub async fn update_participant(
        &self,
        organization: &str,
        id: &str,
        call: &CallId,
        role: SupervisorRole,
        whisper_to: Vec<CallId>,
    ) -> Result<(), CallError> {
        let media =
            self.conferences().live(organization, id).map_err(|e| refused(e, "/conference_id"))?.media;
        let leg = self.registry.leg(call).ok_or(CallError::Ended)?;
        self.conferences()
            .update(organization, id, call, &rfc3339_now(), |p| {
                p.role = role;
                p.whisper_to.clone_from(&whisper_to);
            })
            .map_err(|e| refused(e, "/call_control_id"))?;
        self.engine.set_party_role(media, leg, self.party_role(role, &whisper_to)).await?;
        Ok(())
    }

    /// `end`: the conference ends and its participants are hung up.
    pub async fn end_conference(&self, organization: &str, id: &str) -> Result<(), CallError> {
        self.conferences().live(organization, id).map_err(|e| refused(e, "/conference_id"))?;
        self.conference_over(id, EndReason::EndedViaApi, None, true).await;
        Ok(())
    }

    /// A call in a conference is ending: it leaves it (`conference.participant.left`,
    /// written in `tx`). What its leaving means for the conference follows after.
    pub(super) async fn end_conference_party(
        &self,
        tx: &mut bond_store::Tx,
        call: &CallRecord,
    ) -> Result<(), DbError> {
        let left = self.conferences().leave(&call.call_control_id, &rfc3339_now());
        let Some((id, participant, then)) = left else { return Ok(()) };
        let (service, beeping) = (self.clone(), id.clone());
        tokio::spawn(async move { service.beep_exit(&beeping, participant.beeps).await });
        let mut body = payload::base(call);
        body.extend(conference_fields(&id));
        self.enqueue(tx, call, "conference.participant.left", Value::Object(body)).await?;
        if let Then::Ends { reason, hang_up } = then {
            // Not awaited here: ending the rest hangs up calls, which ends them here again.
            tokio::spawn(self.clone().conference_over_later(
                id,
                reason,
                call.call_control_id.clone(),
                hang_up,
            ));
        }
        Ok(())
    }

    /// End conference `id`: its participants leave (hung up with `hang_up`)
    /// and `conference.ended` is written for its creator.
    async fn conference_over(&self, id: &str, reason: EndReason, by: Option<CallId>, hang_up: bool) {
        if let Some((_, time_limit)) = self.conferences.1.remove(id) {
            time_limit.abort();
        }
        if let Err(e) = self.end_conference_recording(id).await {
            tracing::error!(conference = id, error = %e, "could not finish a conference's recording");
        }
        let ended = self.conferences().end(id, reason, by, &rfc3339_now());
        let Some((participants, media)) = ended else { return };
        let _ = self.engine.end_conference(media).await;
        for participant in &participants {
            let call = &participant.call;
            if let Err(e) = self.call_event(call, "conference.participant.left", conference_fields(id)).await
            {
                tracing::error!(%call, error = %e, "could not record a conference leaving");
            }
            if hang_up {
                self.end(call, Ending::WITH_ITS_PARTNER).await;
            } else {
                self.restore(participant).await;
            }
        }
        let creator = self.conferences().get_any(id).map(|c| c.creator.clone());
        if let Some(creator) = creator {
            let mut fields = conference_fields(id);
            fields.insert("reason".into(), reason.as_str().into());
            if let Err(e) = self.call_event(&creator, "conference.ended", fields).await {
                tracing::error!(conference = id, error = %e, "could not record a conference's end");
            }
        }
    }

    /// [`conference_over`](Self::conference_over) as a task of its own. Boxed
    /// as `Send`: it hangs up calls, whose ending may lead back here.
    fn conference_over_later(
        self,
        id: String,
        reason: EndReason,
        by: CallId,
        hang_up: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move { self.conference_over(&id, reason, Some(by), hang_up).await })
    }

    /// `play` and `speak`: a clip every participant hears (`conference.playback.*`,
    /// `conference.speak.*` to the creator's webhook).
    pub async fn conference_playback(
        &self,
        organization: &str,
        id: &str,
        request: super::PlaybackRequest,
    ) -> Result<(), CallError> {
        let (creator, media) = {
            let conferences = self.conferences();
            let c = conferences.live(organization, id).map_err(|e| refused(e, "/conference_id"))?;
            (c.creator.clone(), c.media)
        };
        self.play_to_conference(&creator, id, media, request).await
    }

    /// `play` and `speak` to the participants named only: each hears the clip
    /// over the conference (`conference.playback.*` to the creator, once).
    pub async fn participants_playback(
        &self,
        organization: &str,
        id: &str,
        calls: &[CallId],
        request: super::PlaybackRequest,
    ) -> Result<(), CallError> {
        let creator = self
            .conferences()
            .live(organization, id)
            .map_err(|e| refused(e, "/conference_id"))?
            .creator
            .clone();
        let legs: Vec<LegId> =
            self.chosen(organization, id, calls)?.iter().filter_map(|call| self.registry.leg(call)).collect();
        self.play_to_participants(&creator, id, &legs, request).await
    }

    /// `stop` with `call_control_ids`: what plays to those participants alone stops.
    pub async fn stop_participants_playback(
        &self,
        organization: &str,
        id: &str,
        calls: &[CallId],
    ) -> Result<(), CallError> {
        for call in self.chosen(organization, id, calls)? {
            if let Some(leg) = self.registry.leg(&call) {
                self.engine.stop_playback(leg, true, true).await?;
            }
        }
        Ok(())
    }

    /// `stop`: what plays to the conference stops, and what is queued after it.
    pub async fn stop_conference_playback(&self, organization: &str, id: &str) -> Result<(), CallError> {
        let media =
            self.conferences().live(organization, id).map_err(|e| refused(e, "/conference_id"))?.media;
        self.engine.stop_conference_playback(media, false).await?;
        Ok(())
    }

    /// End conference `id` when its time is up.
    fn end_on_time(&self, id: String, after: Duration) {
        let service = self.clone();
        let timers = self.conferences.1.clone();
        let key = id.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // Out of the list first: ending the conference cancels the task listed.
            service.conferences.1.remove(&id);
            service.conference_over(&id, EndReason::TimeExceeded, None, true).await;
        });
        timers.insert(key, task.abort_handle());
    }

    /// Conference `id` starts: those waiting for it, unless the application
    /// holds them, come off hold and hear it.
    async fn start_conference(&self, id: &str) {
        let waiting = self.conferences().start(id);
        for participant in waiting.iter().filter(|p| !p.on_hold) {
            if let Some(leg) = self.registry.leg(&participant.call) {
                let _ = self.engine.hold(leg, None).await;
            }
        }
    }

    /// A participant that left gets its own state back: heard, and off hold.
    async fn restore(&self, participant: &Participant) {
        let Some(leg) = self.registry.leg(&participant.call) else { return };
        if participant.muted {
            let _ = self.engine.set_mute(leg, Some(false), None).await;
        }
        if participant.on_hold || participant.waiting {
            let _ = self.engine.hold(leg, None).await;
        }
    }

    /// The participants an action names, or all of them when it names none.
    fn chosen(&self, organization: &str, id: &str, calls: &[CallId]) -> Result<Vec<CallId>, CallError> {
        let conferences = self.conferences();
        let conference = conferences.live(organization, id).map_err(|e| refused(e, "/conference_id"))?;
        if calls.is_empty() {
            return Ok(conference.participants.iter().map(|p| p.call.clone()).collect());
        }
        match calls.iter().find(|c| conference.participant(c).is_none()) {
            Some(stranger) => Err(refused(ConferenceError::NotIn(stranger.clone()), "/call_control_ids")),
            None => Ok(calls.to_vec()),
        }
    }

    /// The engine's role for a Telnyx `supervisor_role`: a whisper to nobody
    /// only listens (as Telnyx says).
    fn party_role(&self, role: SupervisorRole, whisper_to: &[CallId]) -> PartyRole {
        match role {
            SupervisorRole::None | SupervisorRole::Barge => PartyRole::Speaker,
            SupervisorRole::Monitor => PartyRole::Monitor,
            SupervisorRole::Whisper => {
                let legs: Vec<LegId> = whisper_to.iter().filter_map(|c| self.registry.leg(c)).collect();
                if legs.is_empty() {
                    PartyRole::Monitor
                } else {
                    PartyRole::Whisper(legs)
                }
            }
        }
    }

    /// What a held participant hears: `audio_url` looped, or Bond's hold tune.
    async fn hold_source(&self, leg: LegId, audio_url: Option<String>) -> Result<MediaSource, CallError> {
        let (samples, rate) = match audio_url {
            Some(url) => {
                let clip = self.load_clip(leg, AudioSource::Url(url), None).await?;
                (clip.samples, clip.rate)
            }
            None => {
                let rate = self.engine.leg_rate(leg).await?.ok_or(CallError::Ended)?;
                (crate::queue::music::hold_tune(rate).into(), rate)
            }
        };
        Ok(MediaSource::Play { samples, rate, repeat: true })
    }
}

fn conference_fields(id: &str) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("conference_id".into(), id.into());
    fields.insert("occurred_at".into(), rfc3339_now().into());
    fields
}

/// A refused conference request: 404 for a conference that does not exist, else 422.
fn refused(error: ConferenceError, pointer: &str) -> CallError {
    match error {
        ConferenceError::NoSuchConference(_) => CallError::NotFound(error.to_string()),
        _ => CallError::invalid("10002", error.to_string(), pointer),
    }
}
