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

/// What a run through Bond gave: the outcomes, and how many greetings Bond had
/// its recognizer transcribe and how many of those it could not.
#[derive(Debug)]
pub struct Run {
    pub outcomes: Vec<Outcome>,
    pub words_asked: u64,
    pub words_failed: u64,
}

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
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.map_err(|e| e.to_string())??);
    }
    let metrics = bond.metrics().await?;
    let counter = |name: &str| {
        let line = metrics.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok()).map_or(0, |v| v as u64)
    };
    let (words_asked, words_failed) =
        (counter("bond_amd_words_asked_total"), counter("bond_amd_words_failed_total"));
    match bond.bad_signatures() {
        0 => Ok(Run { outcomes, words_asked, words_failed }),
        bad => Err(format!("{bad} webhooks had a bad signature")),
    }
}

async fn one_clip(bond: &BondProcess, connection_id: &str, clip: ClipInfo) -> Result<Outcome, String> {
    let body = json!({ "connection_id": connection_id, "to": format!("loop:play?file={}", clip.file),
        "from": "+13125550100", "answering_machine_detection": "premium",
        "answering_machine_detection_config": { "language": prompts::language_of(&clip.speaker) } });
    let dialed = bond.post("/v2/calls", body).await?;
    let call = dialed["data"]["call_control_id"]
        .as_str()
        .ok_or_else(|| format!("dial failed: {dialed}"))?
        .to_owned();
    let mut outcome = Outcome { clip, verdict: None, verdict_ms: None, greeting: None };
    // The verdict comes within the analysis time; a machine's greeting end within 30 s.
    let _ = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            let arrived = bond.inbox.arrived.notified();
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
                break;
            }
            arrived.await;
        }
    })
    .await;
    let _ = bond.post(&format!("/v2/calls/{call}/actions/hangup"), json!({})).await;
    Ok(outcome)
}
