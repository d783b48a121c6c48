//! What the load tools (tests/bin/*-load) share: arguments, percentiles, and a
//! process's CPU and memory from /proc.

use std::path::PathBuf;
use std::process::ExitCode;

/// A load tool's command line: `COUNT SECONDS [--flag value ...]`.
#[derive(Debug, Clone)]
pub struct LoadArgs {
    args: Vec<String>,
}

impl LoadArgs {
    pub fn from_env() -> Self {
        Self { args: std::env::args().skip(1).collect() }
    }

    /// The positional argument `index`, or `default`.
    pub fn number(&self, index: usize, default: u64) -> u64 {
        self.args.get(index).and_then(|a| a.parse().ok()).unwrap_or(default)
    }

    /// The value after `--name`.
    pub fn flag(&self, name: &str) -> Option<String> {
        self.args.iter().position(|a| a == name).and_then(|i| self.args.get(i + 1)).cloned()
    }

    /// `--bond PATH`, else `bond` next to this program.
    pub fn bond_bin(&self) -> PathBuf {
        self.flag("--bond")
            .map(PathBuf::from)
            .or_else(|| std::env::current_exe().ok().map(|p| p.with_file_name("bond")))
            .unwrap_or_else(|| PathBuf::from("bond"))
    }
}

/// Print a run's report (or why it failed) and exit accordingly.
pub fn finish(tool: &str, result: Result<String, String>) -> ExitCode {
    match result {
        Ok(report) => {
            eprintln!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// CPU time (user + system) of a process in clock ticks, and its resident set in KiB.
pub fn proc_usage(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (field(11) + field(12), rss)
}

/// The `p`th percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}
