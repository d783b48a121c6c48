//! Per-organization voice configuration, stored as one JSON document.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Store;
use crate::clock::rfc3339_now;
use crate::db::DbError;
use crate::keys::Role;

/// What an organization's calls do by default (the platforms' `voice_configs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct VoiceConfig {
    pub record: bool,
    pub transcribe: bool,
    pub live_translate: bool,
    pub translate_from: Option<String>,
    pub translate_to: Option<String>,
    pub voice_to_voice: bool,
    /// Telnyx `answering_machine_detection` default for customer legs.
    pub answering_machine_detection: String,
    #[schema(value_type = Option<Object>)]
    pub answering_machine_detection_config: Option<Value>,
    /// ISO 3166-1 alpha-2 countries outbound calls may reach; `None` allows all.
    /// A number inside a `sip:` URI is held to it too.
    pub outbound_countries: Option<Vec<String>>,
    /// The least role whose keys may dial raw `sip:` URIs (they reach any host
    /// on the internet, past the trunk): `admin` unless changed.
    pub sip_uri_dialing: Role,
}

impl Default for VoiceConfig {
    fn default() -> Self {
        Self {
            record: false,
            transcribe: false,
            live_translate: false,
            translate_from: None,
            translate_to: None,
            voice_to_voice: false,
            answering_machine_detection: "disabled".to_owned(),
            answering_machine_detection_config: None,
            outbound_countries: None,
            sip_uri_dialing: Role::Admin,
        }
    }
}

impl Store {
    /// The organization's configuration, or the defaults when it has none.
    pub async fn voice_config(&self, organization_id: &str) -> Result<VoiceConfig, DbError> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT config FROM voice_configs WHERE organization_id = $1")
                .bind(organization_id)
                .fetch_optional(self.db.pool())
                .await?;
        match stored {
            None => Ok(VoiceConfig::default()),
            Some(text) => {
                serde_json::from_str(&text).map_err(|e| DbError::Corrupt(format!("voice config: {e}")))
            }
        }
    }

    pub async fn save_voice_config(
        &self,
        organization_id: &str,
        config: &VoiceConfig,
    ) -> Result<(), DbError> {
        let text = serde_json::to_string(config).map_err(|e| DbError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO voice_configs (organization_id, config, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (organization_id) DO UPDATE SET config = EXCLUDED.config, updated_at = EXCLUDED.updated_at",
        )
        .bind(organization_id)
        .bind(text)
        .bind(rfc3339_now())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }
}
