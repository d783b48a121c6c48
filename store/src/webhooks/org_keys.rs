//! Webhook signing keys per organization. Telnyx gives each account its own
//! public key; with one key for every organization, a webhook Bond sent one
//! organization would also verify at another's endpoint, so anyone who saw one
//! could replay it there. An organization's key is made with it
//! (`store::organizations`); organizations made before keys were per
//! organization keep the instance key, so their receivers need no change.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use dashmap::DashMap;
use sqlx::Row;

use super::WebhookSigner;
use crate::db::DbError;
use crate::Store;

/// Finds (and caches) each organization's signer.
#[derive(Debug, Clone)]
pub struct OrgSigners {
    store: Store,
    instance: WebhookSigner,
    cache: Arc<DashMap<String, WebhookSigner>>,
}

impl OrgSigners {
    pub fn new(store: Store, instance: WebhookSigner) -> Self {
        Self { store, instance, cache: Arc::default() }
    }

    /// The key `organization_id`'s webhooks are signed with.
    pub async fn for_org(&self, organization_id: &str) -> Result<WebhookSigner, DbError> {
        if let Some(signer) = self.cache.get(organization_id) {
            return Ok(signer.clone());
        }
        let row = sqlx::query("SELECT secret FROM organization_signing_keys WHERE organization_id = $1")
            .bind(organization_id)
            .fetch_optional(self.store.db().pool())
            .await?;
        let signer =
            match row {
                Some(row) => {
                    let secret: String = row.try_get(0)?;
                    let bytes: [u8; 32] =
                        BASE64.decode(secret.as_bytes()).ok().and_then(|b| b.try_into().ok()).ok_or_else(
                            || DbError::Corrupt(format!("the signing key of {organization_id}")),
                        )?;
                    WebhookSigner::from_secret(bytes)
                }
                None => self.instance.clone(),
            };
        self.cache.insert(organization_id.to_owned(), signer.clone());
        Ok(signer)
    }
}
