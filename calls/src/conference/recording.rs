//! Recording a conference (Telnyx `record_start`, `record_stop`,
//! `record_pause`, `record_resume`). A built-in leg joins the conference as a
//! monitor: it hears what every participant may hear (the speakers and the
//! clips played to all, not a coach's whispers) and is recorded as any leg is,
//! one channel at 8 kHz (a recorder at a higher rate would raise the rate the
//! whole conference mixes at). `conference.recording.saved` goes to the
//! creator's webhook; the recording is listed with the others, with its
//! `conference_id`.

use bond_codecs::SampleRate;
use bond_media_engine::leg::MediaSource;
use bond_media_engine::runtime::RecordChannels;
use bond_media_engine::PartyRole;

use super::refused;
use crate::error::CallError;
use crate::recording::new_recording;
use crate::service::CallService;

/// The rate a conference is recorded at.
const RECORDING_RATE: SampleRate = SampleRate::Hz8000;

impl CallService {
    /// `record_start`: a recorder joins the conference and its file begins.
    pub async fn start_conference_recording(&self, organization: &str, id: &str) -> Result<(), CallError> {
        let (creator, media) = {
            let conferences = self.conferences();
            let c = conferences.live(organization, id).map_err(|e| refused(e, "/conference_id"))?;
            (c.creator.clone(), c.media)
        };
        if self.store.active_conference_recording(id).await?.is_some() {
            return Err(CallError::invalid(
                "90017",
                "The conference is already being recorded.",
                "/conference_id",
            ));
        }
        // The recording is filed under the call that created the conference, ended or not.
        let creator = self.store.get_call(organization, &creator).await?.ok_or(CallError::Ended)?;
        let leg = self.engine.near(media).create_local_leg(RECORDING_RATE, MediaSource::Silence).await?;
        let record = new_recording(&creator, RecordChannels::Single, RECORDING_RATE, Some(id.to_owned()));
        let started = async {
            self.engine.join_conference(media, leg, PartyRole::Monitor).await?;
            self.record_leg(leg, &record, RecordChannels::Single).await
        };
        if let Err(e) = started.await {
            let _ = self.engine.hangup(leg).await;
            return Err(e);
        }
        if !self.conferences().set_recorder(id, Some(leg)) {
            // It ended meanwhile: the recording ends with it.
            self.finish_recording_of(&record, leg).await;
            let _ = self.engine.hangup(leg).await;
        }
        Ok(())
    }

    /// `record_stop`: the file is finished and announced.
    pub async fn stop_conference_recording(&self, organization: &str, id: &str) -> Result<(), CallError> {
        self.conferences().live(organization, id).map_err(|e| refused(e, "/conference_id"))?;
        if !self.end_conference_recording(id).await? {
            return Err(not_recording());
        }
        Ok(())
    }

    /// `record_pause` and `record_resume`.
    pub async fn pause_conference_recording(
        &self,
        organization: &str,
        id: &str,
        paused: bool,
    ) -> Result<(), CallError> {
        let recorder =
            self.conferences().live(organization, id).map_err(|e| refused(e, "/conference_id"))?.recorder;
        let recording = self.store.active_conference_recording(id).await?;
        let (Some(leg), Some(recording)) = (recorder, recording) else { return Err(not_recording()) };
        self.engine.pause_recording(leg, paused).await?;
        let status = if paused { "paused" } else { "recording" };
        self.store.set_recording_status(&recording.id, status).await?;
        Ok(())
    }

    /// Finish conference `id`'s recording, if it has one; whether it had.
    pub(super) async fn end_conference_recording(&self, id: &str) -> Result<bool, CallError> {
        let recorder = self.conferences().take_recorder(id);
        let recording = self.store.active_conference_recording(id).await?;
        let (Some(leg), Some(recording)) = (recorder, recording) else { return Ok(false) };
        self.finish_recording_of(&recording, leg).await;
        let _ = self.engine.hangup(leg).await;
        Ok(true)
    }
}

fn not_recording() -> CallError {
    CallError::invalid("90016", "The conference is not being recorded.", "/conference_id")
}
