use crate::CallId;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Page, Store};
use crate::db::DbError;

/// A recording as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RecordingRecord {
    pub id: String,
    #[serde(skip)]
    pub organization_id: String,
    pub call_control_id: CallId,
    pub call_leg_id: String,
    pub call_session_id: String,
    pub connection_id: String,
    /// `single` or `dual`.
    pub channels: String,
    pub sample_rate: i64,
    /// `recording`, `paused`, `completed`, or `repaired` (cut short by a crash, fixed at start-up).
    pub status: String,
    #[serde(skip)]
    pub file_name: String,
    pub duration_millis: Option<i64>,
    pub recording_started_at: String,
    pub recording_ended_at: Option<String>,
    /// A conference's recording: the conference (the call columns are its creator's).
    pub conference_id: Option<String>,
}

const COLUMNS: &str = "id, organization_id, call_control_id, call_leg_id, call_session_id, connection_id, channels, \
                       sample_rate, status, file_name, duration_millis, recording_started_at, recording_ended_at, \
                       conference_id";

fn from_row(r: &AnyRow) -> Result<RecordingRecord, DbError> {
    Ok(RecordingRecord {
        id: r.try_get(0)?,
        organization_id: r.try_get(1)?,
        call_control_id: CallId::from(r.try_get::<String, _>(2)?),
        call_leg_id: r.try_get(3)?,
        call_session_id: r.try_get(4)?,
        connection_id: r.try_get(5)?,
        channels: r.try_get(6)?,
        sample_rate: r.try_get(7)?,
        status: r.try_get(8)?,
        file_name: r.try_get(9)?,
        duration_millis: r.try_get(10)?,
        recording_started_at: r.try_get(11)?,
        recording_ended_at: r.try_get(12)?,
        conference_id: r.try_get(13)?,
    })
}

impl Store {
    pub async fn insert_recording(&self, r: &RecordingRecord) -> Result<(), DbError> {
        sqlx::query(&format!(
            "INSERT INTO recordings ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&r.id)
        .bind(&r.organization_id)
        .bind(r.call_control_id.as_str())
        .bind(&r.call_leg_id)
        .bind(&r.call_session_id)
        .bind(&r.connection_id)
        .bind(&r.channels)
        .bind(r.sample_rate)
        .bind(&r.status)
        .bind(&r.file_name)
        .bind(r.duration_millis)
        .bind(&r.recording_started_at)
        .bind(&r.recording_ended_at)
        .bind(&r.conference_id)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    pub async fn get_recording(
        &self,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<RecordingRecord>, DbError> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE id = $1 AND organization_id = $2"))
                .bind(id)
                .bind(organization_id)
                .fetch_optional(self.db.pool())
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// For signed downloads, which carry no organization.
    pub async fn get_recording_any(&self, id: &str) -> Result<Option<RecordingRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn recording_by_file(&self, file_name: &str) -> Result<Option<RecordingRecord>, DbError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM recordings WHERE file_name = $1"))
            .bind(file_name)
            .fetch_optional(self.db.pool())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The recording of a call that has not finished yet.
    pub async fn active_recording(
        &self,
        call_control_id: &CallId,
    ) -> Result<Option<RecordingRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE call_control_id = $1 AND conference_id IS NULL \
             AND status IN ('recording', 'paused')"
        ))
        .bind(call_control_id.as_str())
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The recording of a conference that has not finished yet.
    pub async fn active_conference_recording(
        &self,
        conference_id: &str,
    ) -> Result<Option<RecordingRecord>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE conference_id = $1 AND status IN ('recording', 'paused')"
        ))
        .bind(conference_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn list_recordings(
        &self,
        organization_id: &str,
        page: Page,
    ) -> Result<(Vec<RecordingRecord>, i64), DbError> {
        self.page_of("recordings", COLUMNS, "recording_started_at DESC, id", organization_id, page, from_row)
            .await
    }

    pub async fn set_recording_status(&self, id: &str, status: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE recordings SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }

    pub async fn finish_recording(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
        status: &str,
        duration_millis: i64,
        ended_at: &str,
    ) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE recordings SET status = $1, duration_millis = $2, recording_ended_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(duration_millis)
        .bind(ended_at)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Mark an unfinished recording `interrupted` (its node died); false if it
    /// was finished or marked already (another node got there first).
    pub async fn interrupt_recording(
        &self,
        tx: &mut Transaction<'static, Any>,
        id: &str,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE recordings SET status = 'interrupted' WHERE id = $1 AND status IN ('recording', 'paused')",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Finished recordings not yet copied to object storage, oldest first.
    pub async fn recordings_to_store(&self, limit: i64) -> Result<Vec<RecordingRecord>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM recordings WHERE status IN ('completed', 'repaired') AND stored_at IS NULL \
             ORDER BY recording_ended_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The recording is in object storage since `at`.
    pub async fn set_recording_stored(&self, id: &str, at: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE recordings SET stored_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(self.db.pool())
            .await?;
        Ok(())
    }
}
