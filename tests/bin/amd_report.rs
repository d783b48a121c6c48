//! `amd-report CORPUS_DIR [--direct] [--out FILE]`: run the answering-machine
//! detector over a corpus made by `amd-corpus` and write the accuracy report.
//!
//! By default every clip goes through a real Bond: the `bond` binary is started
//! on a scratch database, each clip is dialed as `loop:play` with premium AMD,
//! and the verdicts come back as signed webhooks. `--direct` feeds the detector
//! in-process instead (seconds, for tuning).

use std::path::PathBuf;
use std::process::ExitCode;

use bond_media_engine::amd::AmdConfig;
use bond_tests::amd::{corpus, eval};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: amd-report CORPUS_DIR [--direct] [--out FILE]");
        return ExitCode::from(2);
    };
    let direct = args.iter().any(|a| a == "--direct");
    let out = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).map(PathBuf::from);
    let result = (|| -> Result<String, String> {
        let labels =
            std::fs::read_to_string(dir.join("labels.csv")).map_err(|e| format!("labels.csv: {e}"))?;
        let clips = corpus::parse_labels(&labels)?;
        let outcomes = if direct {
            clips
                .iter()
                .map(|c| Ok(eval::detect(c, &corpus::read_wav(&dir.join(&c.file))?, AmdConfig::default())))
                .collect::<Result<Vec<_>, String>>()?
        } else {
            return Err("only --direct so far".into());
        };
        let scores = eval::score(&outcomes);
        Ok(eval::render(&scores, "Detector run in-process over the corpus (`amd-report --direct`)."))
    })();
    match result {
        Ok(report) => {
            match out {
                Some(path) => {
                    if let Err(e) = std::fs::write(&path, &report) {
                        eprintln!("amd-report: {}: {e}", path.display());
                        return ExitCode::FAILURE;
                    }
                }
                None => eprint!("{report}"),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amd-report: {e}");
            ExitCode::FAILURE
        }
    }
}
