//! Recordings copied to object storage (`storage.s3_*`; here an in-memory store
//! and a local-directory store standing in for the bucket): the finished file is
//! copied, the local copy deleted, and the signed link serves the stored object;
//! while the store fails the copy is retried until it succeeds. The same against
//! a real S3 server: tests/interop/test_recording_s3.py.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{action, dial, download, outbox, setup, tone_share};
use axum::http::StatusCode;
use bond_calls::recording_storage::RecordingStorage;
use bond_control_api::state::AppState;
use futures_util::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;

/// Record `hz` for 300 ms on a new call; the `call.recording.saved` payload.
async fn record_a_tone(state: &AppState, conn: &str, hz: u32) -> serde_json::Value {
    let id = dial(state, conn, &format!("loop:tone?hz={hz}")).await;
    assert_eq!(action(state, &id, "record_start", json!({ "channels": "single" })).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(action(state, &id, "record_stop", json!({})).await.0, StatusCode::OK);
    let saved = outbox(state).await.into_iter().filter(|(t, _)| t == "call.recording.saved");
    saved.map(|(_, p)| p).find(|p| p["call_control_id"] == id.as_str()).expect("call.recording.saved")
}

/// The objects in `store` and their bytes, once there are `count` of them (within 10 s).
async fn objects(store: &dyn ObjectStore, count: usize) -> Vec<(String, Vec<u8>)> {
    for _ in 0..200 {
        let listed: Vec<_> = store.list(None).try_collect().await.unwrap();
        if listed.len() >= count {
            let mut found = Vec::new();
            for meta in listed {
                let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
                found.push((meta.location.to_string(), bytes.to_vec()));
            }
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{count} objects were not stored in time");
}

fn wav_files(dir: &std::path::Path) -> usize {
    let orgs = std::fs::read_dir(dir).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
    orgs.iter().filter_map(|org| std::fs::read_dir(org.path()).ok()).map(|d| d.count()).sum()
}

#[tokio::test]
async fn a_finished_recording_is_stored_its_local_file_deleted_and_its_link_serves_the_stored_copy() {
    let (_dir, mut state, conn) = setup(&[]).await;
    let bucket = Arc::new(object_store::memory::InMemory::new());
    let storage = RecordingStorage::new(bucket.clone(), "calls/", false);
    state.calls = state.calls.clone().with_recording_storage(Some(storage), Duration::from_millis(50));

    let saved = record_a_tone(&state, &conn, 700).await;
    let stored = objects(bucket.as_ref(), 1).await;
    let recording = saved["recording_id"].as_str().unwrap();
    let (name, bytes) = &stored[0];
    assert!(name.starts_with("calls/") && name.ends_with(&format!("/{recording}.wav")), "{name}");
    for _ in 0..100 {
        if wav_files(state.calls.recordings_dir()) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(wav_files(state.calls.recordings_dir()), 0, "the local file goes once stored");

    let (status, downloaded) = download(&state, saved["recording_urls"]["wav"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&downloaded, bytes, "the link serves the stored object");
    let samples: Vec<i16> = hound::WavReader::new(std::io::Cursor::new(downloaded))
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert!(samples.len() >= 8000 / 5 && tone_share(&samples[400..], 700.0, 8000) > 0.9);
}

#[tokio::test]
async fn while_the_store_fails_recordings_wait_locally_and_are_stored_once_it_works() {
    let (dir, mut state, conn) = setup(&[]).await;
    let bucket_dir = dir.path().join("bucket");
    std::fs::create_dir(&bucket_dir).unwrap();
    let bucket = Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&bucket_dir).unwrap());
    // The bucket is broken: a file where its directory should be.
    std::fs::remove_dir(&bucket_dir).unwrap();
    std::fs::write(&bucket_dir, b"not a directory").unwrap();
    let storage = RecordingStorage::new(bucket.clone(), "", false);
    state.calls = state.calls.clone().with_recording_storage(Some(storage), Duration::from_millis(50));

    let first = record_a_tone(&state, &conn, 700).await;
    let second = record_a_tone(&state, &conn, 1100).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(wav_files(state.calls.recordings_dir()), 2, "kept locally while the store fails");
    for saved in [&first, &second] {
        let (status, _) = download(&state, saved["recording_urls"]["wav"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "served from the local file meanwhile");
    }

    std::fs::remove_file(&bucket_dir).unwrap();
    std::fs::create_dir(&bucket_dir).unwrap();
    let stored = objects(bucket.as_ref(), 2).await;
    let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
    for saved in [&first, &second] {
        let recording = saved["recording_id"].as_str().unwrap();
        assert!(names.iter().any(|n| n.ends_with(&format!("/{recording}.wav"))), "{names:?}");
        // The file may still be being deleted; the link works either way.
        let (status, _) = download(&state, saved["recording_urls"]["wav"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }
}
