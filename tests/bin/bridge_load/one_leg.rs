//! Set-ups whose every call is one SIP leg into Bond (side A only):
//! `--echo`, each bridged with a `loop:echo`, and `--conference`, all in one
//! conference (created with the first call, joined by the rest), where each
//! party hears the mix of every other. Everything a conference sends is a frame
//! Bond mixed, so it is timed against its own RTP timestamp (`pacing.rs`), as
//! transcoded Opus is.

use std::sync::Mutex;
use std::time::Duration;

use bond_tests::bond_process::BondProcess;
use bond_tests::load::{clock, percentile};
use serde_json::json;

use super::{all_known, event_counts, initiated_calls, Setup, Targets, SETUP_BATCH};

/// Set up every call into `loop:echo` (see the top of this file).
pub(super) async fn setup_echo(setup: &Setup<'_>) -> Result<(), String> {
    use futures_util::StreamExt;
    let Setup { bond, options, a_media, targets, trunk } = setup;
    let connection = &trunk.connection;
    let mut initiated = bond.inbox.subscribe();
    let mut pacing = tokio::time::interval(Duration::from_secs_f64(1.0 / options.rate));
    let mut actions = futures_util::stream::FuturesUnordered::new();
    let deadline = tokio::time::sleep(Duration::from_secs_f64(options.pairs as f64 / options.rate + 60.0));
    tokio::pin!(deadline);
    let (mut next, mut done) = (0, 0);
    while done < options.pairs {
        tokio::select! {
            _ = pacing.tick(), if next < options.pairs => {
                targets.lock().expect("lock").invited[next] = Some(clock());
                trunk.invite(next, a_media[next]).await?;
                next += 1;
            }
            Some((kind, payload)) = initiated.recv() => {
                if kind != "call.initiated" || payload["direction"] != "incoming" {
                    continue;
                }
                let call = payload["call_control_id"].as_str().unwrap_or_default().to_owned();
                let dial = json!({ "connection_id": connection, "to": "loop:echo", "from": "+15550000000",
                    "link_to": call, "bridge_on_answer": true });
                actions.push(async move {
                    bond.post(&format!("/v2/calls/{call}/actions/answer"), json!({})).await?;
                    let placed = bond.post("/v2/calls", dial).await?;
                    placed.get("errors").map_or(Ok(()), |e| Err(format!("dial: {e}")))
                });
            }
            Some(result) = actions.next() => {
                result?;
                done += 1;
            }
            () = &mut deadline => return Err(format!("{done} of {} calls answered in time", options.pairs)),
        }
    }
    for _ in 0..600 {
        let bridged = bond.inbox.all().iter().filter(|(t, _)| t == "call.bridged").count();
        if bridged >= 2 * options.pairs && all_known(targets, true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let unbridged: Vec<Vec<String>> = bond
        .inbox
        .call_ids()
        .iter()
        .map(|c| bond.inbox.of(c).into_iter().map(|(kind, _)| kind).collect::<Vec<_>>())
        .filter(|kinds| !kinds.iter().any(|k| k == "call.bridged"))
        .collect();
    Err(format!(
        "not every call was bridged with its echo; events: {:?}; calls never bridged: {unbridged:?}",
        event_counts(bond)
    ))
}

/// Set-up times (INVITE to 200 OK, ms): p50, p99, and the rate the calls were set up at.
pub(super) fn setup_report(targets: &Mutex<Targets>) -> String {
    let t = targets.lock().expect("lock");
    let pairs = t.invited.iter().zip(&t.answered).filter_map(|(i, a)| Some(((*i)?, (*a)?)));
    let mut times: Vec<u64> =
        pairs.clone().map(|(i, a)| a.saturating_duration_since(i).as_micros() as u64).collect();
    times.sort_unstable();
    let first = pairs.clone().map(|(i, _)| i).min();
    let last = pairs.map(|(_, a)| a).max();
    let span = first.zip(last).map_or(0.0, |(f, l)| l.saturating_duration_since(f).as_secs_f64());
    format!(
        "set-up (INVITE -> 200 OK, the application answering through the API) ms: p50={:.1} p99={:.1} max={:.1}; \
         {} calls in {span:.2} s = {:.0} calls/s",
        percentile(&times, 50.0) as f64 / 1000.0,
        percentile(&times, 99.0) as f64 / 1000.0,
        times.last().copied().unwrap_or(0) as f64 / 1000.0,
        times.len(),
        times.len() as f64 / span.max(f64::EPSILON),
    )
}

/// Set up every call and put them all in one conference.
pub(super) async fn setup_conference(setup: &Setup<'_>) -> Result<(), String> {
    let Setup { bond, options, a_media, targets, trunk } = setup;
    let pairs: Vec<usize> = (0..options.pairs).collect();
    let mut calls = Vec::with_capacity(options.pairs);
    for batch in pairs.chunks(SETUP_BATCH) {
        for &i in batch {
            trunk.invite(i, a_media[i]).await?;
        }
        let initiated = initiated_calls(bond, batch).await?;
        let answers = initiated.values().map(|call| format!("/v2/calls/{call}/actions/answer"));
        post_all(bond, answers.map(|path| (path, json!({}))), "answer").await?;
        calls.extend(initiated.into_values());
    }
    let first = calls.first().ok_or("a conference needs a call")?;
    let body = json!({ "call_control_id": first, "name": "bridge-load", "max_participants": 800 });
    let created = bond.post("/v2/conferences", body).await?;
    let id = created["data"]["id"].as_str().ok_or_else(|| format!("create: {created}"))?.to_owned();
    for batch in calls[1..].chunks(SETUP_BATCH) {
        let path = format!("/v2/conferences/{id}/actions/join");
        post_all(bond, batch.iter().map(|call| (path.clone(), json!({ "call_control_id": call }))), "join")
            .await?;
    }
    for _ in 0..600 {
        let joined = bond.inbox.all().iter().filter(|(t, _)| t == "conference.participant.joined").count();
        if joined >= options.pairs && all_known(targets, true) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("not every call joined the conference; events: {:?}", event_counts(bond)))
}

/// POST each (path, body) at once; the first API error fails them all.
async fn post_all(
    bond: &BondProcess,
    requests: impl Iterator<Item = (String, serde_json::Value)>,
    what: &str,
) -> Result<(), String> {
    let posts = requests.map(|(path, body)| async move { bond.post(&path, body).await });
    for answer in futures_util::future::join_all(posts).await {
        if let Some(e) = answer?.get("errors") {
            return Err(format!("{what}: {e}"));
        }
    }
    Ok(())
}
