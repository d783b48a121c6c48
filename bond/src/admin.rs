//! `bond admin ...`: manage organizations and keys from the shell, against the
//! database in the configuration.

use crate::config::Config;
use bond_control_api::agent_token::{AgentClaims, TokenRole, MAX_TTL_SECS};
use bond_control_api::auth::Role;
use bond_store::db::{Database, DbError};
use bond_store::webhooks::WebhookSigner;
use bond_store::Store;

/// One admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    CreateOrg {
        name: String,
    },
    ListOrgs,
    CreateKey {
        organization_id: String,
        role: Role,
        name: String,
    },
    ListKeys {
        organization_id: String,
    },
    RevokeKey {
        api_key_id: String,
    },
    PublicKey {
        organization_id: String,
    },
    /// A token for the softphone (role agent) or the supervisors' page (role supervisor).
    Token {
        organization_id: String,
        name: String,
        role: TokenRole,
        connection_id: Option<String>,
        ttl_secs: i64,
    },
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("no organization {0}")]
    NoSuchOrganization(String),
    #[error("no API key {0} that is not revoked already")]
    NoSuchKey(String),
}

/// Run a command; returns what to print (one fact per line, easy to script).
pub async fn run(config: &Config, command: AdminCommand) -> Result<String, AdminError> {
    let db = Database::connect(&config.database_url).await?;
    let store = Store::new(db).await?;
    let output = match command {
        AdminCommand::CreateOrg { name } => {
            let org = store.create_organization(&name).await?;
            format!("organization_id={}\n", org.id)
        }
        AdminCommand::ListOrgs => store
            .list_organizations()
            .await?
            .into_iter()
            .map(|o| format!("{}\t{}\t{}\n", o.id, o.name, o.created_at))
            .collect(),
        AdminCommand::CreateKey { organization_id, role, name } => {
            if !store.organization_exists(&organization_id).await? {
                return Err(AdminError::NoSuchOrganization(organization_id));
            }
            let (record, key) = store.create_api_key(&organization_id, role, &name).await?;
            format!("api_key_id={}\nrole={}\napi_key={key}\n", record.id, record.role)
        }
        AdminCommand::ListKeys { organization_id } => store
            .list_api_keys(&organization_id)
            .await?
            .into_iter()
            .map(|k| {
                let revoked = k.revoked_at.unwrap_or_else(|| "-".into());
                format!(
                    "{}\t{}\t{}\t{}\t{}\trevoked={revoked}\n",
                    k.id, k.role, k.prefix, k.name, k.created_at
                )
            })
            .collect(),
        AdminCommand::RevokeKey { api_key_id } => {
            if !store.revoke_api_key(None, &api_key_id).await? {
                return Err(AdminError::NoSuchKey(api_key_id));
            }
            format!("revoked={api_key_id}\n")
        }
        AdminCommand::Token { organization_id, name, role, connection_id, ttl_secs } => {
            if !store.organization_exists(&organization_id).await? {
                return Err(AdminError::NoSuchOrganization(organization_id));
            }
            let claims = AgentClaims {
                organization_id,
                agent: name,
                expires: bond_store::clock::unix_seconds() + ttl_secs.clamp(1, MAX_TTL_SECS),
                connection_id,
                id: uuid::Uuid::new_v4().to_string(),
                role,
            };
            let signer = WebhookSigner::load_or_create(store.db()).await?;
            let expires = bond_control_api::agent_token::expires_at(&claims).unwrap_or_default();
            format!(
                "token_id={}\nexpires_at={expires}\ntoken={}\n",
                claims.id,
                bond_control_api::agent_token::issue(&signer, &claims)
            )
        }
        AdminCommand::PublicKey { organization_id } => {
            if !store.organization_exists(&organization_id).await? {
                return Err(AdminError::NoSuchOrganization(organization_id));
            }
            let instance = WebhookSigner::load_or_create(store.db()).await?;
            let signer = bond_store::webhooks::OrgSigners::new(store.clone(), instance)
                .for_org(&organization_id)
                .await?;
            format!("{}\n", signer.public_key_base64())
        }
    };
    store.db().close().await;
    Ok(output)
}
