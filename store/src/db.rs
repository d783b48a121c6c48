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
            .test_before_acquire(!sqlite)
            .acquire_timeout(Duration::from_secs(if sqlite { 15 } else { 5 }))
            // A connection left inside a transaction (one whose owner was lost)
            // is closed, never lent out again: every later statement on it
            // would sit uncommitted in that transaction. Checked when lent, by
            // which time the rollback a dropped transaction queues has run.
            .before_acquire(|conn, _| {
                Box::pin(async move {
                    if sqlx::Connection::is_in_transaction(conn) {
                        tracing::error!(
                            "a database connection was left inside a transaction: closed, rolled back"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
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
        Ok(Self { pool, backend })
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
