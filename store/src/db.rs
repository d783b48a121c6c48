//! The database: SQLite by default, Postgres when the URL says so, one set of
//! portable migrations (`migrations/` at the repository root) run at start-up.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::AnyPool;

/// Database start-up and query failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database directory {path}: {source}")]
    Directory { path: String, source: std::io::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Query(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("a database task failed: {0}")]
    Task(String),
}

impl DbError {
    /// Whether the database could not be reached (it is down, restarting, or
    /// the network to it is): the request may succeed if retried later.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Query(e) => matches!(
                e,
                sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
            ),
            _ => false,
        }
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Which server is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl FromStr for Backend {
    type Err = ();
    fn from_str(url: &str) -> Result<Self, ()> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(())
        }
    }
}

/// A connection pool with the schema migrated.
#[derive(Debug, Clone)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// For connections outside the pool (Postgres `LISTEN`).
    url: std::sync::Arc<str>,
}

impl Database {
    /// Connect (creating the SQLite file and its directory when needed) and migrate.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        install_default_drivers();
        let backend = Backend::from_str(url)
            .map_err(|()| DbError::Connect(sqlx::Error::Configuration("unsupported database URL".into())))?;
        if backend == Backend::Sqlite {
            create_sqlite_dir(url)?;
        }
        let sqlite = backend == Backend::Sqlite;
        // SQLite: one writer, so one connection; WAL with `synchronous = NORMAL`
        // commits without an fsync each (a crash of Bond loses nothing; a power
        // cut may lose the last transactions), which keeps a burst of dials fast.
        // A SQLite connection is a file handle that cannot drop the way a
        // server's socket can, so it is not pinged before each use: with one
        // connection, that ping was a second round trip to sqlx's worker
        // thread for every statement.
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 1 } else { 10 })
            // Postgres connections are checked when lent by the query below,
            // which is also the ping; SQLite's are not (see above).
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(if sqlite { 15 } else { 5 }))
            .before_acquire(move |conn, _| Box::pin(outside_any_transaction(conn, sqlite)))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(DbError::Connect)?;
        MIGRATOR.run(&pool).await?;
        if backend == Backend::Postgres {
            create_outbox_sequence(&pool).await?;
        }
        Ok(Self { pool, backend, url: url.into() })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// SQL for the database server's clock in unix milliseconds: nodes compare
    /// leases on one clock, whatever their own clocks say.
    pub fn now_millis_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        }
    }

    /// SQL for the next outbox `seq`, handed out by the database: on Postgres
    /// a sequence every node shares; on SQLite (one writer, one node) the
    /// largest so far plus one, read under the write lock of the insert.
    pub fn next_outbox_seq_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => "nextval('webhook_outbox_seq')",
            Backend::Sqlite => "(SELECT COALESCE(MAX(seq), 0) + 1 FROM webhook_outbox)",
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when a trivial query answers within a second.
    pub async fn is_ready(&self) -> bool {
        let ping = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&self.pool);
        matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Ok(1)))
    }

    /// This installation's id: made on first start, then kept.
    pub async fn instance_id(&self, fresh: &str, now: &str) -> Result<String, DbError> {
        self.setting_or_insert("instance_id", fresh, now).await
    }

    /// The stored value of `key`, storing `fresh` first if there is none.
    pub async fn setting_or_insert(&self, key: &str, fresh: &str, now: &str) -> Result<String, DbError> {
        sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(fresh)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let value = sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a pooled connection may be lent: not inside a transaction. One left
/// inside one (its owner was dropped, or its `BEGIN` was cancelled, which sqlx
/// does not undo on Postgres: transact-rs/sqlx#4393) is closed, which rolls it
/// back; lent again, every later write on it would sit uncommitted, seen by
/// this process and lost by a crash. sqlx's own count of open transactions
/// misses a cancelled `BEGIN`, so on Postgres the server is asked: the
/// statement and transaction timestamps are equal only in the first statement
/// of a transaction (an error, as inside a failed transaction, also closes it).
/// It goes as a simple query (a bare `&str`, one protocol message): sent with
/// the extended protocol (`sqlx::query`), Parse, Bind and Execute each restart
/// the statement clock, the two never matched, and every connection was
/// closed and opened again on every acquire.
const FIRST_STATEMENT_OF_ITS_TRANSACTION: &str = "SELECT statement_timestamp() = transaction_timestamp()";

async fn outside_any_transaction(conn: &mut sqlx::AnyConnection, sqlite: bool) -> Result<bool, sqlx::Error> {
    let outside = !sqlx::Connection::is_in_transaction(conn)
        && (sqlite || {
            let row = sqlx::Executor::fetch_one(&mut *conn, FIRST_STATEMENT_OF_ITS_TRANSACTION).await?;
            sqlx::Row::try_get::<bool, _>(&row, 0)?
        });
    if !outside {
        tracing::error!("a database connection was left inside a transaction: closed, rolled back");
    }
    Ok(outside)
}

/// The outbox's sequence (Postgres only, so not in the portable migrations),
/// started above every `seq` an earlier Bond handed out. Under an advisory
/// lock: nodes starting together would race on `CREATE SEQUENCE IF NOT EXISTS`.
async fn create_outbox_sequence(pool: &AnyPool) -> Result<(), DbError> {
    let mut tx = pool.begin().await?;
    for statement in [
        "SELECT pg_advisory_xact_lock(7460293, 0)",
        "CREATE SEQUENCE IF NOT EXISTS webhook_outbox_seq",
        "SELECT setval('webhook_outbox_seq', m) FROM (SELECT MAX(seq) AS m FROM webhook_outbox) AS x \
         WHERE m > (SELECT last_value FROM webhook_outbox_seq)",
    ] {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn create_sqlite_dir(url: &str) -> Result<(), DbError> {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| DbError::Directory { path: dir.display().to_string(), source })?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The database URLs the tests run against: a fresh SQLite file, plus
    /// Postgres when `BOND_TEST_DATABASE_URL` is set.
    pub(crate) fn test_urls(dir: &Path) -> Vec<String> {
        let mut urls = vec![format!("sqlite://{}?mode=rwc", dir.join("t.db").display())];
        if let Ok(url) = std::env::var("BOND_TEST_DATABASE_URL") {
            urls.push(url);
        }
        urls
    }

    #[tokio::test]
    async fn migrates_and_answers_on_every_backend() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let db = Database::connect(&url).await.unwrap();
            assert!(db.is_ready().await, "{url}");
            // Running the migrations again is a no-op.
            let again = Database::connect(&url).await.unwrap();
            assert!(again.is_ready().await);
            db.close().await;
            assert!(!db.is_ready().await, "a closed pool is not ready");
        }
    }

    #[tokio::test]
    async fn instance_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let db = Database::connect(&url).await.unwrap();
            let first = db.instance_id("first-candidate", "2026-01-01T00:00:00Z").await.unwrap();
            let second = db.instance_id("second-candidate", "2026-01-02T00:00:00Z").await.unwrap();
            assert_eq!(first, second);
        }
    }

    /// Writes a fresh setting through `db` and answers whether `elsewhere`, a
    /// second pool on the same database, sees it: only a committed write shows.
    /// (An uncommitted insert is also invisible to `db`'s other connections,
    /// which makes its own read-back fail.)
    async fn write_is_committed(db: &Database, elsewhere: &Database) -> bool {
        let key = format!("committed-{}", uuid::Uuid::new_v4());
        if db.setting_or_insert(&key, "yes", "2026-01-01T00:00:00Z").await.is_err() {
            return false;
        }
        let seen: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(&key)
            .fetch_optional(elsewhere.pool())
            .await
            .unwrap();
        seen.as_deref() == Some("yes")
    }

    /// What a caller dropped between `BEGIN` and its answer leaves behind (the
    /// kill -9 loss of issue 39): a pooled connection inside a transaction no
    /// `Transaction` owns. Lent again, every later write would sit uncommitted
    /// in it, seen by this process and lost by a crash; it must be closed instead.
    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_is_never_lent_again() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let db = Database::connect(&url).await.unwrap();
            let mut conn = db.pool().acquire().await.unwrap();
            std::mem::forget(sqlx::Connection::begin(&mut *conn).await.unwrap());
            drop(conn);

            let elsewhere = Database::connect(&url).await.unwrap();
            assert!(
                write_is_committed(&db, &elsewhere).await,
                "{url}: a write sat in an orphaned transaction"
            );
        }
    }

    /// The check that closes a connection left inside a transaction keeps
    /// every other one: a connection used and returned is lent again, not
    /// closed and opened anew on each acquire.
    #[tokio::test]
    async fn a_connection_outside_any_transaction_is_lent_again_not_reopened() {
        let Ok(url) = std::env::var("BOND_TEST_DATABASE_URL") else { return };
        let db = Database::connect(&url).await.unwrap();
        let backend = || async {
            let mut conn = db.pool().acquire().await.unwrap();
            sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&mut *conn).await.unwrap()
        };
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            seen.insert(backend().await);
        }
        let open = db.pool().size() as usize;
        assert!(
            seen.len() <= open,
            "{} connections for 20 acquires, {open} open: closed and reopened",
            seen.len()
        );
        let mut conn = db.pool().acquire().await.unwrap();
        assert!(outside_any_transaction(&mut conn, false).await.unwrap());
        sqlx::Executor::execute(&mut *conn, "BEGIN").await.unwrap();
        assert!(
            !outside_any_transaction(&mut conn, false).await.unwrap(),
            "inside a BEGIN sqlx does not count"
        );
        sqlx::Executor::execute(&mut *conn, "ROLLBACK").await.unwrap();
    }

    /// sqlx's `BEGIN` cancelled at any moment (a dropped HTTP handler): on
    /// Postgres the server can be left inside a transaction sqlx does not count
    /// (transact-rs/sqlx#4393). Every later write must still be committed.
    /// Timing decides where each cancellation lands; before the server was
    /// asked, Postgres lost a write within the first few hundred rounds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_begin_cancelled_at_any_moment_leaves_no_write_uncommitted() {
        let dir = tempfile::tempdir().unwrap();
        for url in test_urls(dir.path()) {
            let db = Database::connect(&url).await.unwrap();
            let elsewhere = Database::connect(&url).await.unwrap();
            for round in 0..400u64 {
                let cancel_after = Duration::from_micros(round % 200);
                let _ = tokio::time::timeout(cancel_after, db.pool().begin()).await;
                assert!(write_is_committed(&db, &elsewhere).await, "{url}: round {round}");
            }
        }
    }

    #[tokio::test]
    async fn sqlite_file_and_directory_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a/b/bond.db").display());
        Database::connect(&url).await.unwrap();
        assert!(dir.path().join("a/b/bond.db").exists());
    }

    #[tokio::test]
    async fn an_unreachable_database_is_a_connect_error() {
        let err = Database::connect("postgres://nobody@127.0.0.1:1/none").await.unwrap_err();
        assert!(matches!(err, DbError::Connect(_)), "{err}");
    }
}
