//! The conferences of every organization, kept in memory: who is in which,
//! with what role, muted or held, and when a conference ends. I/O-free: it
//! takes `now` and says what a change means (a host leaving ends the
//! conference, the last party leaving ends it); `mod.rs` carries that out.

use std::collections::{HashMap, VecDeque};

use bond_media_engine::LegId;
use bond_store::CallId;

/// Ended conferences kept to be listed, per process (the oldest go first).
const KEPT_ENDED: usize = 1_000;

/// Who hears a participant (Telnyx `supervisor_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SupervisorRole {
    /// A normal participant (`none`, or `barge`, which Telnyx says is the same).
    #[default]
    None,
    Barge,
    /// Hears everyone, heard by no one.
    Monitor,
    /// Heard only by the participants in `whisper_call_control_ids`.
    Whisper,
}

impl SupervisorRole {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "none" => Self::None,
            "barge" => Self::Barge,
            "monitor" => Self::Monitor,
            "whisper" => Self::Whisper,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Barge => "barge",
            Self::Monitor => "monitor",
            Self::Whisper => "whisper",
        }
    }
}

/// Why a conference ended (Telnyx `end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    AllLeft,
    EndedViaApi,
    HostLeft,
    TimeExceeded,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllLeft => "all_left",
            Self::EndedViaApi => "ended_via_api",
            Self::HostLeft => "host_left",
            Self::TimeExceeded => "time_exceeded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConferenceError {
    #[error("no conference {0}")]
    NoSuchConference(String),
    #[error("conference {0} has ended")]
    Ended(String),
    #[error("the conference is full ({0} participants)")]
    Full(usize),
    #[error("call {0} is already in a conference")]
    AlreadyIn(CallId),
    #[error("call {0} is not in this conference")]
    NotIn(CallId),
}

#[derive(Debug, Clone)]
pub struct Participant {
    pub id: String,
    pub call: CallId,
    pub created_at: String,
    pub updated_at: String,
    pub muted: bool,
    pub on_hold: bool,
    pub end_conference_on_exit: bool,
    pub soft_end_conference_on_exit: bool,
    pub role: SupervisorRole,
    pub whisper_to: Vec<CallId>,
    /// When its joining and leaving beep (its `join`'s `beep_enabled`, else the conference's).
    pub beeps: super::Beeps,
    /// Held until the conference starts (`start_conference_on_create: false`).
    pub waiting: bool,
}

#[derive(Debug, Clone)]
pub struct Conference {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub connection_id: String,
    /// The call it was created with: `conference.created` and `.ended` are its events.
    pub creator: CallId,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    /// The engine's conference.
    pub media: LegId,
    pub max_participants: usize,
    pub participants: Vec<Participant>,
    pub ended: Option<(EndReason, Option<CallId>)>,
    /// The built-in leg recording it (`recording.rs`), while one does.
    pub recorder: Option<LegId>,
    /// `beep_enabled`: whether participants' joining and leaving beep.
    pub beeps: super::Beeps,
    /// False until a participant joins with `start_conference_on_enter`, when
    /// created with `start_conference_on_create: false`: until then everyone
    /// who joins waits on hold, hearing `hold_audio_url` (or Bond's tune).
    pub started: bool,
    pub hold_audio_url: Option<String>,
}

impl Conference {
    pub fn status(&self) -> &'static str {
        if self.ended.is_some() {
            "completed"
        } else {
            "in_progress"
        }
    }

    pub fn participant(&self, call: &CallId) -> Option<&Participant> {
        self.participants.iter().find(|p| &p.call == call)
    }
}

/// What a participant's leaving means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The conference goes on.
    GoesOn,
    /// It ends: with `hang_up`, the participants still in are hung up.
    Ends { reason: EndReason, hang_up: bool },
}

#[derive(Debug, Default)]
pub struct Conferences {
    by_id: HashMap<String, Conference>,
    of_call: HashMap<CallId, String>,
    ended: VecDeque<String>,
}

impl Conferences {
    /// A new conference, with no participants yet.
    pub fn create(&mut self, conference: Conference) -> &Conference {
        let id = conference.id.clone();
        self.by_id.entry(id).or_insert(conference)
    }

    /// The organization's conference `id`.
    pub fn get(&self, organization: &str, id: &str) -> Result<&Conference, ConferenceError> {
        self.by_id
            .get(id)
            .filter(|c| c.organization_id == organization)
            .ok_or_else(|| ConferenceError::NoSuchConference(id.to_owned()))
    }

    /// Conference `id`, whoever it belongs to (for its own events).
    pub fn get_any(&self, id: &str) -> Option<&Conference> {
        self.by_id.get(id)
    }

    /// The organization's conference `id`, if it has not ended.
    pub fn live(&self, organization: &str, id: &str) -> Result<&Conference, ConferenceError> {
        let conference = self.get(organization, id)?;
        match conference.ended {
            Some(_) => Err(ConferenceError::Ended(id.to_owned())),
            None => Ok(conference),
        }
    }

    /// The organization's conferences, newest first.
    pub fn list(&self, organization: &str) -> Vec<&Conference> {
        let mut all: Vec<&Conference> =
            self.by_id.values().filter(|c| c.organization_id == organization).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// The conference `call` is in.
    pub fn of_call(&self, call: &CallId) -> Option<&Conference> {
        self.of_call.get(call).and_then(|id| self.by_id.get(id))
    }

    /// Whether `call` may join the organization's conference `id`: its engine conference.
    pub fn check_join(&self, organization: &str, id: &str, call: &CallId) -> Result<LegId, ConferenceError> {
        let conference = self.live(organization, id)?;
        if self.of_call.contains_key(call) {
            return Err(ConferenceError::AlreadyIn(call.clone()));
        }
        if conference.participants.len() >= conference.max_participants {
            return Err(ConferenceError::Full(conference.max_participants));
        }
        Ok(conference.media)
    }

    /// `participant` joined conference `id` (checked with [`check_join`](Self::check_join)).
    pub fn join(&mut self, id: &str, participant: Participant) {
        if let Some(conference) = self.by_id.get_mut(id) {
            self.of_call.insert(participant.call.clone(), id.to_owned());
            conference.participants.push(participant);
        }
    }

    /// Start conference `id`: its waiting participants, taken off the waiting
    /// list, are returned (those the application did not hold are to be let in).
    pub fn start(&mut self, id: &str) -> Vec<Participant> {
        let Some(conference) = self.by_id.get_mut(id) else { return Vec::new() };
        conference.started = true;
        let waiting = conference.participants.iter_mut().filter(|p| p.waiting);
        waiting
            .map(|p| {
                p.waiting = false;
                p.clone()
            })
            .collect()
    }

    /// Change `call`'s participation in conference `id`.
    pub fn update(
        &mut self,
        organization: &str,
        id: &str,
        call: &CallId,
        now: &str,
        change: impl FnOnce(&mut Participant),
    ) -> Result<(), ConferenceError> {
        self.live(organization, id)?;
        let conference =
            self.by_id.get_mut(id).ok_or_else(|| ConferenceError::NoSuchConference(id.into()))?;
        let participant = conference
            .participants
            .iter_mut()
            .find(|p| &p.call == call)
            .ok_or_else(|| ConferenceError::NotIn(call.clone()))?;
        change(participant);
        participant.updated_at = now.to_owned();
        conference.updated_at = now.to_owned();
        Ok(())
    }

    /// `call` left its conference: the conference and the participant it was,
    /// and what follows. A host (`end_conference_on_exit`) ends it and hangs
    /// up the rest; a soft host ends it and leaves them up; the last one out ends it.
    pub fn leave(&mut self, call: &CallId, now: &str) -> Option<(String, Participant, Then)> {
        let id = self.of_call.remove(call)?;
        let conference = self.by_id.get_mut(&id)?;
        let at = conference.participants.iter().position(|p| &p.call == call)?;
        let participant = conference.participants.remove(at);
        conference.updated_at = now.to_owned();
        let then = if participant.end_conference_on_exit {
            Then::Ends { reason: EndReason::HostLeft, hang_up: true }
        } else if participant.soft_end_conference_on_exit {
            Then::Ends { reason: EndReason::HostLeft, hang_up: false }
        } else if conference.participants.is_empty() {
            Then::Ends { reason: EndReason::AllLeft, hang_up: false }
        } else {
            Then::GoesOn
        };
        Some((id, participant, then))
    }

    /// End conference `id`: the participants still in, and its engine conference.
    /// `None` if it had ended already.
    pub fn end(
        &mut self,
        id: &str,
        reason: EndReason,
        by: Option<CallId>,
        now: &str,
    ) -> Option<(Vec<Participant>, LegId)> {
        let conference = self.by_id.get_mut(id).filter(|c| c.ended.is_none())?;
        conference.ended = Some((reason, by));
        conference.updated_at = now.to_owned();
        let participants = std::mem::take(&mut conference.participants);
        for participant in &participants {
            self.of_call.remove(&participant.call);
        }
        let media = conference.media;
        self.ended.push_back(id.to_owned());
        while self.ended.len() > KEPT_ENDED {
            if let Some(old) = self.ended.pop_front() {
                self.by_id.remove(&old);
            }
        }
        Some((participants, media))
    }

    /// Conference `id` is recorded by `leg` now; false if it has ended.
    pub fn set_recorder(&mut self, id: &str, leg: Option<LegId>) -> bool {
        match self.by_id.get_mut(id).filter(|c| c.ended.is_none()) {
            Some(conference) => {
                conference.recorder = leg;
                true
            }
            None => false,
        }
    }

    /// The leg recording conference `id`, taken away.
    pub fn take_recorder(&mut self, id: &str) -> Option<LegId> {
        self.by_id.get_mut(id).and_then(|c| c.recorder.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conference(id: &str, max: usize) -> Conference {
        Conference {
            id: id.into(),
            organization_id: "org".into(),
            name: "standup".into(),
            connection_id: "conn".into(),
            creator: CallId::from("a".to_owned()),
            created_at: "t0".into(),
            updated_at: "t0".into(),
            expires_at: "t1".into(),
            media: LegId(1),
            max_participants: max,
            participants: Vec::new(),
            ended: None,
            recorder: None,
            beeps: Default::default(),
            started: true,
            hold_audio_url: None,
        }
    }

    fn party(call: &str, host: bool, soft: bool) -> Participant {
        Participant {
            id: format!("p-{call}"),
            call: CallId::from(call.to_owned()),
            created_at: "t0".into(),
            updated_at: "t0".into(),
            muted: false,
            on_hold: false,
            end_conference_on_exit: host,
            soft_end_conference_on_exit: soft,
            role: SupervisorRole::None,
            whisper_to: Vec::new(),
            beeps: Default::default(),
            waiting: false,
        }
    }

    fn book_with(parties: &[Participant]) -> Conferences {
        let mut book = Conferences::default();
        book.create(conference("c", 3));
        for p in parties {
            book.check_join("org", "c", &p.call).unwrap();
            book.join("c", p.clone());
        }
        book
    }

    fn call(id: &str) -> CallId {
        CallId::from(id.to_owned())
    }

    #[test]
    fn the_last_one_out_ends_the_conference_and_others_leaving_do_not() {
        let mut book = book_with(&[party("a", false, false), party("b", false, false)]);
        assert_eq!(book.leave(&call("a"), "t2").map(|l| l.2), Some(Then::GoesOn));
        let (_, left, then) = book.leave(&call("b"), "t3").unwrap();
        assert_eq!((left.call, then), (call("b"), Then::Ends { reason: EndReason::AllLeft, hang_up: false }));
        assert!(book.leave(&call("b"), "t4").is_none(), "a call leaves once");
    }

    #[test]
    fn a_host_leaving_ends_it_and_hangs_up_the_rest_unless_soft() {
        let mut book =
            book_with(&[party("a", true, false), party("b", false, true), party("c", false, false)]);
        let hard = Then::Ends { reason: EndReason::HostLeft, hang_up: true };
        let soft = Then::Ends { reason: EndReason::HostLeft, hang_up: false };
        assert_eq!(book.leave(&call("b"), "t2").map(|l| l.2), Some(soft));
        assert_eq!(book.leave(&call("a"), "t3").map(|l| l.2), Some(hard));
    }

    #[test]
    fn starting_a_conference_lets_in_those_waiting_once() {
        let mut waiting = party("a", false, false);
        waiting.waiting = true;
        let mut book = book_with(&[waiting, party("b", false, false)]);
        book.by_id.get_mut("c").unwrap().started = false;
        let let_in: Vec<String> = book.start("c").iter().map(|p| p.call.to_string()).collect();
        assert_eq!(let_in, ["a"]);
        assert!(book.get_any("c").unwrap().started);
        assert!(book.start("c").is_empty(), "nobody waits any more");
    }

    #[test]
    fn joining_is_refused_when_full_ended_already_in_or_another_organizations() {
        let mut book = book_with(&[party("a", false, false), party("b", false, false)]);
        assert_eq!(book.check_join("org", "c", &call("a")), Err(ConferenceError::AlreadyIn(call("a"))));
        assert_eq!(
            book.check_join("other", "c", &call("x")),
            Err(ConferenceError::NoSuchConference("c".into()))
        );
        book.join("c", party("c", false, false));
        assert_eq!(book.check_join("org", "c", &call("d")), Err(ConferenceError::Full(3)));
        let (left, media) = book.end("c", EndReason::EndedViaApi, None, "t5").unwrap();
        assert_eq!((left.len(), media), (3, LegId(1)));
        assert!(book.of_call(&call("a")).is_none(), "its participants are free again");
        assert_eq!(book.check_join("org", "c", &call("d")), Err(ConferenceError::Ended("c".into())));
        assert!(book.end("c", EndReason::EndedViaApi, None, "t6").is_none(), "it ends once");
        assert_eq!(book.get("org", "c").unwrap().status(), "completed");
    }
}
