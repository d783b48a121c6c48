//! The corpus through a real Bond: the `bond` binary is started on a scratch
//! data directory (with the speech models, when given, as `scripts/run` gives
//! them), each clip is dialed as `loop:play` with premium AMD in the clip's
//! language, and the verdicts come back as webhooks whose Ed25519 signatures
//! are checked.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Semaphore;

use super::corpus::ClipInfo;
use super::eval::{verdict_name, Outcome};
use super::prompts;
use crate::bond_process::BondProcess;
use crate::load::timer_lateness_percentile;

/// What a run through Bond gave: the outcomes, and how many greetings Bond had
/// its recognizer transcribe and how many of those it could not.
#[derive(Debug)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub words_asked: u64,
    pub words_failed: u64,
    /// How late Bond's engine ran its timers during the run, 99th percentile
    /// (seconds, the bucket bound): beyond a frame or two, the calls no longer
    /// ran in real time and the verdicts say more about the machine than the detector.
    pub timer_lateness_p99: f64,
    /// How long calls' last events took to arrive after the time they report
    /// (their decision time, from the answer), counting from when the dial
    /// returned: the median and the longest.
    pub event_lag: (Duration, Duration),
    /// Calls whose last event had not arrived when the wait gave up.
    pub unfinished: usize,
}

/// How long a call's events are waited for: a machine's greeting ends within
/// 30 s of the answer, and on a busy machine the webhooks may be taken in many
/// seconds late (debug builds of Bond and of this harness, which sign and check
/// every webhook, fell 4-5 s behind at 100 calls on two cores and 23 s at 250
/// until the signatures' crates were optimized in debug builds too; since,
/// 0.3 s and 12 s: Cargo.toml's `profile.dev.package`).
pub const WAIT_FOR_EVENTS: Duration = Duration::from_secs(120);

/// Run every clip through the `bond` at `bond_bin`, `concurrency` calls at a
/// time; `models`: the folder of whisper.cpp models Bond hears greetings with.
pub async fn run(
    bond_bin: &Path,
    corpus_dir: &Path,
    clips: &[ClipInfo],
    concurrency: usize,
    models: Option<&Path>,
) -> Result<Run, String> {
    let bond = Arc::new(
        BondProcess::start(bond_bin, |data| {
            if let Some(models) = models {
                let models =
                    std::fs::canonicalize(models).map_err(|e| format!("{}: {e}", models.display()))?;
                std::os::unix::fs::symlink(models, data.join("models")).map_err(|e| e.to_string())?;
            }
            for clip in clips {
                let from = std::fs::canonicalize(corpus_dir.join(&clip.file))
                    .map_err(|e| format!("{}: {e}", clip.file))?;
                std::os::unix::fs::symlink(from, data.join(&clip.file)).map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await?,
    );
    let connection_id = bond.connection(json!({})).await?;
    let before = bond.metrics().await?;
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::new();
    for clip in clips.iter().cloned() {
        let permit = limit.clone().acquire_owned().await.map_err(|e| e.to_string())?;
        let (bond, connection_id) = (bond.clone(), connection_id.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = one_clip(&bond, &connection_id, clip).await;
            drop(permit);
            outcome
        }));
    }
    let (mut outcomes, mut lags) = (Vec::new(), Vec::new());
    for task in tasks {
        let (outcome, lag) = task.await.map_err(|e| e.to_string())??;
        lags.extend(lag);
        outcomes.push(outcome);
    }
    let unfinished = outcomes.len() - lags.len();
    lags.sort();
    let event_lag =
        (lags.get(lags.len() / 2).copied().unwrap_or_default(), lags.last().copied().unwrap_or_default());
    let metrics = bond.metrics().await?;
    let counter = |name: &str| {
        let line = metrics.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).map_or(0, |v| v as u64)
    };
    let (words_asked, words_failed) =
        (counter("bond_amd_words_asked_total"), counter("bond_amd_words_failed_total"));
    let (timer_lateness_p99, _) = timer_lateness_percentile(&before, &metrics, 99.0);
    match bond.bad_signatures() {
        0 => Ok(Run { outcomes, words_asked, words_failed, timer_lateness_p99, event_lag, unfinished }),
        bad => Err(format!("{bad} webhooks had a bad signature")),
    }
}

/// One clip's outcome, and how late its last event arrived after the time it
/// reports (`None`: it never came).
async fn one_clip(
    bond: &BondProcess,
    connection_id: &str,
    clip: ClipInfo,
) -> Result<(Outcome, Option<Duration>), String> {
    let body = json!({ "connection_id": connection_id, "to": format!("loop:play?file={}", clip.file),
        "from": "+13125550100", "answering_machine_detection": "premium",
        "answering_machine_detection_config": { "language": prompts::language_of(&clip.speaker) } });
    let dialed = bond.post("/v2/calls", body).await?;
    let call = dialed["data"]["call_control_id"]
        .as_str()
        .ok_or_else(|| format!("dial failed: {dialed}"))?
        .to_owned();
    #[allow(clippy::disallowed_methods)] // the harness times Bond's webhooks from outside
    let dialed_at = std::time::Instant::now();
    let mut outcome = Outcome { clip, verdict: None, verdict_ms: None, greeting: None };
    let arrivals = bond.inbox.arrivals(&call);
    let waited = tokio::time::timeout(WAIT_FOR_EVENTS, async {
        loop {
            let arrived = arrivals.notified();
            for (event_type, payload) in
                bond.inbox.of(&call).iter().filter(|(t, _)| t.starts_with("call.machine."))
            {
                let result = payload["result"].as_str().unwrap_or_default();
                let at = payload["decision_time_millis"].as_u64().map(|v| v as u32);
                if event_type.ends_with("detection.ended") {
                    outcome.verdict = Some(verdict_name(result).to_owned());
                    outcome.verdict_ms = at;
                } else {
                    outcome.greeting = at.map(|at| (result.to_owned(), at));
                }
            }
            let finished =
                outcome.greeting.is_some() || outcome.verdict.as_deref().is_some_and(|v| v != "machine");
            if finished {
                let reported = outcome.greeting.as_ref().map(|g| g.1).or(outcome.verdict_ms).unwrap_or(0);
                break dialed_at.elapsed().saturating_sub(Duration::from_millis(u64::from(reported)));
            }
            arrived.await;
        }
    })
    .await;
    let _ = bond.post(&format!("/v2/calls/{call}/actions/hangup"), json!({})).await;
    Ok((outcome, waited.ok()))
}
