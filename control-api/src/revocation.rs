//! How an open socket learns that the credential it signed in with stopped
//! working. A request checks its key each time; a socket (an agent's
//! signaling, a supervisor's feed) signs in once and then stays open, so it
//! holds a [`Credential`] and waits on [`Credential::lapsed`] beside its
//! frames: the token's expiry, a revocation announced in this process (the
//! API's `DELETE`), or one found on a periodic look at the store (revoked by
//! `bond admin revoke-key`, another process).

use std::time::Duration;

use tokio::sync::broadcast;

use bond_store::clock::unix_seconds;
use bond_store::Store;

/// How often an open socket looks its credential up again.
pub const RECHECK: Duration = Duration::from_secs(30);

/// A credential revoked through the API: an agent or supervisor token's id, or an API key's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    pub organization_id: String,
    pub id: String,
}

/// The announcements; every open socket subscribes.
#[derive(Debug, Clone)]
pub struct Revocations {
    sender: broadcast::Sender<Revoked>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self { sender: broadcast::channel(256).0 }
    }
}

impl Revocations {
    /// Tell open sockets that `id` no longer works (after the store says so).
    pub fn announce(&self, organization_id: &str, id: &str) {
        // No receiver: no socket open, nothing to tell.
        let _ = self.sender.send(Revoked { organization_id: organization_id.into(), id: id.into() });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Revoked> {
        self.sender.subscribe()
    }
}

/// What a socket signed in with, enough to notice it stop working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An agent or supervisor token: its id and when it expires (unix seconds).
    Token { organization_id: String, id: String, expires: i64 },
    /// An API key: its id, and its hash to look it up again.
    ApiKey { organization_id: String, id: String, hash: String },
}

/// Why a socket's credential stopped working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    Expired,
    Revoked,
}

impl Lapse {
    /// The WebSocket close code and reason a socket ends with: 4001 expired, 4003 revoked.
    pub fn close_frame(self) -> (u16, &'static str) {
        match self {
            Self::Expired => (4001, "the token expired"),
            Self::Revoked => (4003, "the credential was revoked"),
        }
    }
}

impl Credential {
    fn id(&self) -> (&str, &str) {
        match self {
            Self::Token { organization_id, id, .. } | Self::ApiKey { organization_id, id, .. } => {
                (organization_id, id)
            }
        }
    }

    /// Resolves when the credential expires or is revoked; pending while it works.
    pub async fn lapsed(&self, store: &Store, revocations: &Revocations) -> Lapse {
        self.lapsed_checking_every(RECHECK, store, revocations).await
    }

    /// [`Credential::lapsed`], looking at the store every `recheck`. A store
    /// error is taken as "still works" (the next look may succeed).
    pub async fn lapsed_checking_every(
        &self,
        recheck: Duration,
        store: &Store,
        revocations: &Revocations,
    ) -> Lapse {
        let mut announced = revocations.subscribe();
        let expiry = match self {
            Self::Token { expires, .. } => {
                Some(Duration::from_secs((expires - unix_seconds()).max(0) as u64))
            }
            Self::ApiKey { .. } => None,
        };
        let expired = async {
            match expiry {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let mut recheck = tokio::time::interval(recheck);
        recheck.tick().await; // the first tick is at once; it was just checked at sign-in
        loop {
            tokio::select! {
                () = &mut expired => return Lapse::Expired,
                revoked = announced.recv() => match revoked {
                    Ok(r) if (r.organization_id.as_str(), r.id.as_str()) == self.id() => return Lapse::Revoked,
                    Ok(_) => {}
                    // Missed announcements: look it up now rather than wait.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if self.revoked_in(store).await {
                            return Lapse::Revoked;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => announced = revocations.subscribe(),
                },
                _ = recheck.tick() => {
                    if self.revoked_in(store).await {
                        return Lapse::Revoked;
                    }
                }
            }
        }
    }

    async fn revoked_in(&self, store: &Store) -> bool {
        let found = match self {
            Self::Token { organization_id, id, .. } => store.agent_token_revoked(organization_id, id).await,
            Self::ApiKey { hash, .. } => store.key_owner(hash).await.map(|p| p.is_none()),
        };
        found.unwrap_or(false)
    }
}
