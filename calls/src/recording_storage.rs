//! Recordings in object storage (any S3-compatible store, `storage.s3_*`).
//!
//! One background task copies each finished recording there, streaming the file
//! (multipart past a few MiB), and deletes the local file once the database says
//! it is stored (unless `storage.keep_local`). While the store fails it retries,
//! waiting from `retry` up to a minute between rounds. `stored_at` in the database
//! is the only state, so a restart carries on where it stopped and nothing is
//! lost: the order is copy, mark stored, then delete. Downloads read the local
//! file while it is there, else the stored object, through the same signed link.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;

use bond_store::clock::rfc3339_now;
use bond_store::{RecordingRecord, Store};

/// Longest wait between two rounds while the store fails.
const MAX_RETRY: Duration = Duration::from_secs(60);
/// A round runs at least this often, whether or not a recording finished.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Recordings read from the database at a time.
const BATCH: i64 = 100;

/// Where finished recordings are copied.
#[derive(Debug, Clone)]
pub struct RecordingStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    keep_local: bool,
    wake: Arc<Notify>,
}

impl RecordingStorage {
    /// Objects are named `prefix` + the recording's file name (`<organization>/<id>.wav`).
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, keep_local: bool) -> Self {
        Self { store, prefix: prefix.to_owned(), keep_local, wake: Arc::default() }
    }

    /// The configured S3-compatible bucket; `None` when `storage.s3_bucket` is empty.
    /// Credentials left empty come from the usual `AWS_*` environment variables.
    pub fn from_config(config: &StorageConfig) -> Result<Option<Self>, String> {
        if config.s3_bucket.is_empty() {
            return Ok(None);
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&config.s3_bucket)
            .with_region(&config.s3_region);
        if !config.s3_endpoint.is_empty() {
            builder = builder
                .with_endpoint(&config.s3_endpoint)
                .with_allow_http(config.s3_endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if !config.s3_access_key_id.is_empty() {
            builder = builder
                .with_access_key_id(&config.s3_access_key_id)
                .with_secret_access_key(&config.s3_secret_access_key);
        }
        let store = builder.build().map_err(|e| format!("storage.s3_*: {e}"))?;
        Ok(Some(Self::new(Arc::new(store), &config.s3_prefix, config.keep_local)))
    }

    fn key(&self, file_name: &str) -> ObjectPath {
        ObjectPath::from(format!("{}{file_name}", self.prefix))
    }

    /// A recording finished: copy it now rather than at the next round.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The stored copy of a recording's file, as a stream of its bytes.
    pub async fn read(
        &self,
        file_name: &str,
    ) -> Result<futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>, String> {
        let found = self.store.get(&self.key(file_name)).await.map_err(|e| e.to_string())?;
        Ok(found.into_stream())
    }

    /// Copy finished recordings from `dir` until Bond stops.
    pub async fn run(self, db: Store, dir: PathBuf, retry: Duration) {
        let mut wait = retry;
        loop {
            // Each round in a task of its own: a panic in a store's client fails the round, not the copier.
            let round = tokio::spawn({
                let (this, db, dir) = (self.clone(), db.clone(), dir.clone());
                async move { this.copy_pending(&db, &dir).await }
            });
            match round.await.unwrap_or_else(|e| Err(format!("the copy failed: {e}"))) {
                Ok(()) => {
                    wait = retry;
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(SWEEP_EVERY) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "recordings not stored yet");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// One round: every finished recording not stored yet, oldest first.
    async fn copy_pending(&self, db: &Store, dir: &Path) -> Result<(), String> {
        loop {
            let batch = db.recordings_to_store(BATCH).await.map_err(|e| e.to_string())?;
            for recording in &batch {
                self.copy(db, dir, recording).await?;
            }
            if (batch.len() as i64) < BATCH {
                return Ok(());
            }
        }
    }

    async fn copy(&self, db: &Store, dir: &Path, recording: &RecordingRecord) -> Result<(), String> {
        let path = dir.join(&recording.file_name);
        let key = self.key(&recording.file_name);
        match tokio::fs::File::open(&path).await {
            Ok(mut file) => {
                let mut writer = BufWriter::new(self.store.clone(), key.clone());
                let copied = match tokio::io::copy(&mut file, &mut writer).await {
                    // A multipart upload begun is given up (a writer that failed to finish is done already).
                    Err(e) => {
                        Err(writer.abort().await.map_or_else(|a| format!("{e} ({a})"), |()| e.to_string()))
                    }
                    Ok(_) => writer.shutdown().await.map_err(|e| e.to_string()),
                };
                if let Err(e) = copied {
                    metrics::counter!("bond_recording_store_failures_total").increment(1);
                    return Err(format!("{key}: {e}"));
                }
            }
            // Stored before a crash came between the copy and the mark, or gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.store.head(&key).await.is_err() {
                    tracing::error!(recording = %recording.id, "a finished recording's file is gone; it cannot be stored");
                    return db.set_recording_status(&recording.id, "failed").await.map_err(|e| e.to_string());
                }
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        db.set_recording_stored(&recording.id, &rfc3339_now()).await.map_err(|e| e.to_string())?;
        metrics::counter!("bond_recordings_stored_total").increment(1);
        if !self.keep_local {
            if let Err(e) = tokio::fs::remove_file(&path).await {
                tracing::warn!(file = %path.display(), error = %e, "stored recording's local file not deleted");
            }
        }
        tracing::debug!(recording = %recording.id, %key, "recording stored");
        Ok(())
    }
}

/// Object storage for finished recordings: any S3-compatible bucket; off while
/// `s3_bucket` is empty (recordings then stay under `recordings_dir`).
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub s3_bucket: String,
    /// Empty: AWS itself; else the store's URL (`http://` allowed, path-style requests).
    pub s3_endpoint: String,
    pub s3_region: String,
    /// Empty: the usual `AWS_*` environment variables.
    pub s3_access_key_id: String,
    #[serde(skip_serializing)]
    pub s3_secret_access_key: String,
    /// Put before each object's name (`<organization>/<recording id>.wav`).
    pub s3_prefix: String,
    /// Keep the local file after it is stored.
    pub keep_local: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".to_owned(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_prefix: String::new(),
            keep_local: false,
        }
    }
}

/// Like the derived one, with the secret key left out (`bond check-config` prints it).
impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = if self.s3_secret_access_key.is_empty() { "(unset)" } else { "(set)" };
        f.debug_struct("StorageConfig")
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &secret)
            .field("s3_prefix", &self.s3_prefix)
            .field("keep_local", &self.keep_local)
            .finish()
    }
}
