//! Which delivery partitions this node's worker delivers ([`crate::PARTITIONS`]
//! of them; a call's events all fall in one, so it is delivered in order by
//! one node at a time).
//!
//! On SQLite (one node) it delivers them all. On Postgres it delivers those it
//! holds a session advisory lock on, taken on a connection of its own: a node
//! that dies loses that connection and with it its locks, and the others take
//! its partitions over. Every second each node moves towards its share
//! (partitions / live nodes, rounded up): above it, it lets go of partitions
//! it is not delivering at that moment; below it, it tries to lock free ones,
//! starting from a point of its own so that nodes do not all try the same.
//! A connection that fails drops every lock: the node delivers nothing until
//! it has a connection and locks again.
//!
//! A node that stalls (hung, or paused) keeps its connection and so its locks:
//! the node that reaps it, once its lease has lapsed, ends that connection
//! ([`Store::release_partitions_of`]; it finds it by its `application_name`),
//! so the stalled node's partitions, with the `call.hangup` of the calls it
//! carried, are delivered by the living.

use std::collections::{BTreeSet, HashSet};

use sqlx::{AnyConnection, Connection};

use crate::db::{Backend, DbError};
use crate::{partition_of, Store, PARTITIONS};

/// The advisory-lock key pair: a hash of the schema (two Bond clusters
/// sharing a database in separate schemas do not take each other's locks)
/// and the partition.
const TRY_LOCK: &str = "SELECT pg_try_advisory_lock(hashtext(current_schema()), CAST($1 AS INTEGER))";
const UNLOCK: &str = "SELECT pg_advisory_unlock(hashtext(current_schema()), CAST($1 AS INTEGER))";
/// The locking connection's `application_name`, from the schema and the node's
/// name (hashed: a name may be longer than the 63 bytes Postgres keeps).
const LOCKER_NAME: &str = "'bond partitions ' || md5(current_schema() || '/' || $1)";

impl Store {
    /// Node `node_id` was taken for dead: end the connection holding its
    /// partitions' locks, if it still has one (it stalled rather than died),
    /// so the living take them over. Returns how many connections were ended;
    /// always 0 on SQLite. Ending another node's connection needs the same
    /// database role (or `pg_signal_backend`).
    pub async fn release_partitions_of(&self, node_id: &str) -> Result<u64, DbError> {
        if self.db().backend() != Backend::Postgres {
            return Ok(0);
        }
        // In the select list, so it runs only on the rows the filter kept; each
        // waits (up to 2 s) for the connection to be gone, so its locks are
        // free when this returns, and a second call finds nothing to end.
        let ended: Vec<bool> = sqlx::query_scalar(&format!(
            "SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = {LOCKER_NAME}"
        ))
        .bind(node_id)
        .fetch_all(self.db().pool())
        .await?;
        Ok(ended.into_iter().filter(|&ended| ended).count() as u64)
    }
}

pub(super) struct Partitions {
    store: Store,
    /// Postgres: the locks held and the connection holding them.
    locks: Option<Locks>,
}

struct Locks {
    held: BTreeSet<i64>,
    connection: Option<AnyConnection>,
    /// Where this node starts trying.
    first: i64,
}

impl Partitions {
    pub(super) fn new(store: Store) -> Self {
        let locks = (store.db().backend() == Backend::Postgres).then(|| Locks {
            held: BTreeSet::new(),
            connection: None,
            first: partition_of(store.node_id()),
        });
        Self { store, locks }
    }

    /// The partitions delivered now; `None`: all of them.
    pub(super) fn delivered(&self) -> Option<Vec<i64>> {
        self.locks.as_ref().map(|l| l.held.iter().copied().collect())
    }

    /// Move towards this node's share, keeping the partitions in `busy` (lanes
    /// are delivering them). On a database error every lock is taken as lost.
    pub(super) async fn rebalance(&mut self, busy: &HashSet<i64>) {
        let Some(locks) = &mut self.locks else { return };
        if let Err(e) = locks.rebalance(&self.store, busy).await {
            tracing::warn!(error = %e, held = locks.held.len(), "webhook partitions lost with their connection");
            locks.held.clear();
            locks.connection = None;
        }
        metrics::gauge!("bond_webhook_partitions_held").set(locks.held.len() as f64);
    }
}

impl Locks {
    async fn rebalance(&mut self, store: &Store, busy: &HashSet<i64>) -> Result<(), DbError> {
        let nodes = store.live_node_count().await?;
        let share = (PARTITIONS + nodes - 1) / nodes;
        if self.connection.is_none() {
            self.held.clear();
            let mut connection = store.db().pool().acquire().await?.detach();
            // Named, so that a node reaping this one can end it (release_partitions_of).
            sqlx::query(&format!("SELECT set_config('application_name', {LOCKER_NAME}, false)"))
                .bind(store.node_id())
                .execute(&mut connection)
                .await?;
            self.connection = Some(connection);
        }
        let Some(connection) = self.connection.as_mut() else { return Ok(()) };
        // Proves the connection (and so the locks) still there.
        connection.ping().await?;
        let extra: Vec<i64> = self
            .held
            .iter()
            .rev()
            .copied()
            .filter(|p| !busy.contains(p))
            .take(self.held.len().saturating_sub(share as usize))
            .collect();
        for partition in extra {
            sqlx::query(UNLOCK).bind(partition).execute(&mut *connection).await?;
            self.held.remove(&partition);
        }
        for partition in (0..PARTITIONS).map(|i| (self.first + i) % PARTITIONS) {
            if self.held.len() as i64 >= share {
                break;
            }
            if self.held.contains(&partition) {
                continue;
            }
            let locked: bool =
                sqlx::query_scalar(TRY_LOCK).bind(partition).fetch_one(&mut *connection).await?;
            if locked {
                self.held.insert(partition);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Database;
    use std::time::Duration;

    /// Node `name` on `db`, registered with a lease of a minute.
    async fn node(db: &Database, name: &str) -> Store {
        let store = Store::new(db.clone()).await.unwrap().for_node(name);
        store.register_node("all", "http://node", 60_000).await.unwrap();
        store
    }

    /// A new schema of BOND_TEST_DATABASE_URL's Postgres (`None` without it).
    async fn fresh_schema() -> Option<Database> {
        let base = std::env::var("BOND_TEST_DATABASE_URL").ok()?;
        let schema = format!("partitions_{}", uuid::Uuid::new_v4().simple());
        let setup = Database::connect(&base).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(setup.pool()).await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(Database::connect(&format!("{base}{sep}options=-csearch_path%3D{schema}")).await.unwrap())
    }

    /// Whether `a`, rebalancing every 100 ms, comes to hold every partition within 5 s.
    async fn takes_every_partition(a: &mut Partitions) -> bool {
        for _ in 0..50 {
            a.rebalance(&HashSet::new()).await;
            if held(a).len() as i64 == PARTITIONS {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    fn held(p: &Partitions) -> BTreeSet<i64> {
        p.delivered().unwrap().into_iter().collect()
    }

    #[tokio::test]
    async fn on_sqlite_the_one_node_delivers_every_partition() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()))
            .await
            .unwrap();
        let mut partitions = Partitions::new(Store::new(db).await.unwrap());
        partitions.rebalance(&HashSet::new()).await;
        assert_eq!(partitions.delivered(), None);
    }

    #[tokio::test]
    async fn nodes_split_the_partitions_and_a_dead_nodes_move_to_the_living() {
        let Some(db) = fresh_schema().await else { return };

        // Alone, a node delivers everything.
        let mut a = Partitions::new(node(&db, "a").await);
        a.rebalance(&HashSet::new()).await;
        assert_eq!(held(&a).len() as i64, PARTITIONS);

        // A second node: the first lets go of half, except the one it is delivering.
        let b_store = node(&db, "b").await;
        let mut b = Partitions::new(b_store.clone());
        let busy: HashSet<i64> = [PARTITIONS - 1].into();
        for _ in 0..2 {
            a.rebalance(&busy).await;
            b.rebalance(&HashSet::new()).await;
        }
        let (held_a, held_b) = (held(&a), held(&b));
        assert_eq!((held_a.len(), held_b.len()), (32, 32), "{held_a:?} {held_b:?}");
        assert!(held_a.is_disjoint(&held_b));
        assert!(held_a.contains(&(PARTITIONS - 1)), "a partition being delivered was let go");

        // b dies: its connection closes (its locks go with it) and its lease lapses.
        drop(b);
        b_store.register_node("all", "http://node", -1).await.unwrap();
        assert!(takes_every_partition(&mut a).await, "a holds {} partitions after b died", held(&a).len());
    }

    #[tokio::test]
    async fn a_stalled_nodes_partitions_are_released_when_it_is_reaped() {
        let Some(db) = fresh_schema().await else { return };
        let a_store = node(&db, "a").await;
        let mut a = Partitions::new(a_store.clone());
        let b_store = node(&db, "b").await;
        let mut b = Partitions::new(b_store.clone());
        for _ in 0..2 {
            a.rebalance(&HashSet::new()).await;
            b.rebalance(&HashSet::new()).await;
        }
        assert_eq!(held(&b).len(), 32);

        // b stalls: its lease lapses, its connection (and so its locks) lives on.
        b_store.register_node("all", "http://node", -1).await.unwrap();
        a.rebalance(&HashSet::new()).await;
        assert_eq!(held(&a).len(), 32, "a took partitions b still locks");
        assert_eq!(a_store.release_partitions_of("b").await.unwrap(), 1);
        assert_eq!(a_store.release_partitions_of("b").await.unwrap(), 0, "ended twice");
        assert!(
            takes_every_partition(&mut a).await,
            "a holds {} partitions after b was reaped",
            held(&a).len()
        );
        // b, running again, finds its locks gone with its connection.
        b.rebalance(&HashSet::new()).await;
        assert!(held(&b).is_disjoint(&held(&a)), "{:?}", held(&b));
    }
}
