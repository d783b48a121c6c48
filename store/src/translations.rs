use crate::CallId;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::Store;
use crate::clock::{rfc3339_now, unix_millis};
use crate::db::DbError;

/// A translated utterance before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSegment {
    #[serde(skip)]
    pub organization_id: String,
    pub call_control_id: CallId,
    pub call_session_id: String,
    /// `inbound`: the call's own party spoke it.
    pub track: String,
    pub language_from: String,
    pub language_to: String,
    pub original: String,
    pub translation: String,
    /// Where it lies in the call's speech, ms from when listening began.
    pub speech_start_ms: i64,
    pub speech_end_ms: i64,
    /// From the end of the speech to the translated text.
    pub latency_ms: i64,
}

/// A stored segment, as the API and the supervisor streams show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub id: String,
    #[serde(flatten)]
    pub fields: NewSegment,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, organization_id, call_control_id, call_session_id, track, language_from, language_to, \
                       original, translation, speech_start_ms, speech_end_ms, latency_ms, created_at";

fn from_row(r: &AnyRow) -> Result<Segment, DbError> {
    let fields = NewSegment {
        organization_id: r.try_get(1)?,
        call_control_id: CallId::from(r.try_get::<String, _>(2)?),
        call_session_id: r.try_get(3)?,
        track: r.try_get(4)?,
        language_from: r.try_get(5)?,
        language_to: r.try_get(6)?,
        original: r.try_get(7)?,
        translation: r.try_get(8)?,
        speech_start_ms: r.try_get(9)?,
        speech_end_ms: r.try_get(10)?,
        latency_ms: r.try_get(11)?,
    };
    Ok(Segment { id: r.try_get(0)?, fields, created_at: r.try_get(12)? })
}

impl Store {
    pub async fn insert_segment(&self, s: NewSegment) -> Result<Segment, DbError> {
        let segment = Segment { id: uuid::Uuid::new_v4().to_string(), fields: s, created_at: rfc3339_now() };
        let s = &segment.fields;
        sqlx::query(&format!(
            "INSERT INTO call_translations ({COLUMNS}, created_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(&segment.id)
        .bind(&s.organization_id)
        .bind(s.call_control_id.as_str())
        .bind(&s.call_session_id)
        .bind(&s.track)
        .bind(&s.language_from)
        .bind(&s.language_to)
        .bind(&s.original)
        .bind(&s.translation)
        .bind(s.speech_start_ms)
        .bind(s.speech_end_ms)
        .bind(s.latency_ms)
        .bind(&segment.created_at)
        .bind(unix_millis())
        .execute(self.db.pool())
        .await?;
        Ok(segment)
    }

    /// A call's segments in the order they were stored.
    pub async fn call_segments(
        &self,
        organization_id: &str,
        call_control_id: &CallId,
    ) -> Result<Vec<Segment>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM call_translations WHERE organization_id = $1 AND call_control_id = $2 \
             ORDER BY created_unix_ms, speech_start_ms"
        ))
        .bind(organization_id)
        .bind(call_control_id.as_str())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }
}
