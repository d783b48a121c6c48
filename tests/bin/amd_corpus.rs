//! `amd-corpus DIR [COUNT] [SEED]`: write a labelled answering-machine corpus
//! (COUNT clips, 1,000 by default) and its `labels.csv` into DIR.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: amd-corpus DIR [COUNT] [SEED]");
        return ExitCode::from(2);
    };
    let count = args.get(1).and_then(|c| c.parse().ok()).unwrap_or(1_000);
    let seed = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(2026);
    match bond_tests::amd::corpus::generate(&dir, seed, count) {
        Ok(clips) => {
            eprintln!("wrote {} clips and labels.csv to {}", clips.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("amd-corpus: {e}");
            ExitCode::FAILURE
        }
    }
}
