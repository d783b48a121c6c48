//! What the load tools (tests/bin/*-load) share: arguments, percentiles, late
//! arrivals by window, a process's CPU and memory from /proc, and a sleeper
//! that tells the machine's own stalls.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.args.iter().any(|a| a == name)
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
    (field(11) + field(12), proc_status_kib(pid, "VmRSS:"))
}

/// A process's anonymous resident memory in KiB (heap and stacks): its
/// resident set less the pages of files it maps, such as its own binary,
/// which two builds of one program can hold differently at idle.
pub fn proc_anon(pid: u32) -> u64 {
    proc_status_kib(pid, "RssAnon:")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The machine's busy time so far, in clock ticks (1/100 s) over every core:
/// every process, and the kernel's work in any context (interrupts and
/// softirqs included), from /proc/stat. Time stolen by the hypervisor is not
/// busy; a process's own times count it, so on a virtual machine they can read
/// higher than this over a short window.
pub fn machine_busy() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal ...
    [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum()
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> Result<u16, String> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    socket.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A load generator's own clock.
pub fn clock() -> std::time::Instant {
    #[allow(clippy::disallowed_methods)] // the generator measures Bond from outside
    std::time::Instant::now()
}

/// How late each frame of a stream ran against the stream's own clock: each
/// offset (arrival minus the frame's RTP time, µs) less the smallest of them,
/// the stream's best frame counting as on time.
pub fn above_best(offsets_us: &[i64]) -> impl Iterator<Item = u64> + '_ {
    let best = offsets_us.iter().copied().min().unwrap_or(0);
    offsets_us.iter().map(move |&o| (o - best) as u64)
}

/// A thread beside the load that sleeps 1 ms at a time and records how much
/// longer each sleep took: what the machine (scheduler, other tenants) does to
/// any thread, so a tail in Bond's numbers can be set against it.
#[derive(Debug)]
pub struct Sleeper {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl Sleeper {
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut over_us = Vec::new();
            let nap = Duration::from_millis(1);
            while !stopping.load(Ordering::Relaxed) {
                let at = clock();
                std::thread::sleep(nap);
                over_us.push(at.elapsed().saturating_sub(nap).as_micros() as u64);
            }
            over_us
        });
        Self { stop, thread }
    }

    /// Stop, and say how the sleeps overran: p50 / p99 / max and how many by over 5 ms.
    pub fn stop(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let mut over_us = self.thread.join().unwrap_or_default();
        over_us.sort_unstable();
        let over_5ms = over_us.len() - over_us.partition_point(|&us| us <= 5_000);
        format!(
            "a 1 ms sleeper beside the load overslept ({} sleeps), ms: p50={:.2} p99={:.2} max={:.2}; over 5 ms: {over_5ms}",
            over_us.len(),
            percentile(&over_us, 50.0) as f64 / 1000.0,
            percentile(&over_us, 99.0) as f64 / 1000.0,
            over_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        )
    }
}

/// The value of an unlabelled metric on a /metrics page, or "?".
pub fn metric_value(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The `p`th percentile of sorted values (nearest rank).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Arrivals later than a threshold, counted by 100 ms window of their send
/// time, so a few stalls (most of the late ones in a window or two) can be told
/// from a tail spread over the run.
#[derive(Debug, Clone)]
pub struct LateWindows {
    late_us: u64,
    /// (late arrivals, the latest) per window.
    windows: Vec<(u64, u64)>,
}

impl LateWindows {
    const WINDOW_US: u64 = 100_000;

    pub fn new(late_us: u64) -> Self {
        Self { late_us, windows: Vec::new() }
    }

    /// One arrival, sent `sent_us` after the run's first send and `latency_us` on its way.
    pub fn add(&mut self, sent_us: u64, latency_us: u64) {
        if latency_us <= self.late_us {
            return;
        }
        let w = (sent_us / Self::WINDOW_US) as usize;
        if self.windows.len() <= w {
            self.windows.resize(w + 1, (0, 0));
        }
        self.windows[w].0 += 1;
        self.windows[w].1 = self.windows[w].1.max(latency_us);
    }

    /// Take in another receiver's count (same threshold).
    pub fn merge(&mut self, other: &Self) {
        if self.windows.len() < other.windows.len() {
            self.windows.resize(other.windows.len(), (0, 0));
        }
        for (mine, theirs) in self.windows.iter_mut().zip(&other.windows) {
            mine.0 += theirs.0;
            mine.1 = mine.1.max(theirs.1);
        }
    }
}

impl std::fmt::Display for LateWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut late: Vec<(usize, (u64, u64))> =
            self.windows.iter().copied().enumerate().filter(|(_, w)| w.0 > 0).collect();
        let total: u64 = late.iter().map(|(_, w)| w.0).sum();
        let threshold = self.late_us as f64 / 1000.0;
        write!(f, "over {threshold} ms: {total}, in {} of the 100 ms windows", late.len())?;
        late.sort_by_key(|(_, w)| std::cmp::Reverse(w.0));
        for (i, (count, max)) in late.into_iter().take(3) {
            write!(f, "; {:.1} s: {count} (max {:.1} ms)", i as f64 / 10.0, max as f64 / 1000.0)?;
        }
        Ok(())
    }
}

/// Bond's `bond_engine_timer_lateness_seconds_bucket` counters from a /metrics
/// page: (upper bound in seconds, cumulative count), in order; +Inf is `f64::INFINITY`.
pub fn timer_lateness_buckets(metrics: &str) -> Vec<(f64, u64)> {
    let mut buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|line| line.strip_prefix("bond_engine_timer_lateness_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"}")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
}

/// The bucket bound (seconds) under which `p` percent of the timer runs between
/// two /metrics readings fell, and how many runs there were.
pub fn timer_lateness_percentile(before: &str, after: &str, p: f64) -> (f64, u64) {
    let before = timer_lateness_buckets(before);
    let after = timer_lateness_buckets(after);
    let delta: Vec<(f64, u64)> =
        after.iter().map(|&(le, n)| (le, n - before.iter().find(|b| b.0 == le).map_or(0, |b| b.1))).collect();
    let total = delta.last().map_or(0, |d| d.1);
    let wanted = (p / 100.0 * total as f64).ceil() as u64;
    let bound = delta.iter().find(|d| d.1 >= wanted).map_or(f64::INFINITY, |d| d.0);
    (bound, total)
}

#[cfg(test)]
mod tests {
    use super::LateWindows;

    #[test]
    fn late_windows_count_only_late_arrivals_by_send_time_and_name_the_worst() {
        let mut a = LateWindows::new(5_000);
        a.add(50_000, 4_000); // on time
        a.add(250_000, 6_000);
        a.add(260_000, 9_000);
        let mut b = LateWindows::new(5_000);
        b.add(1_230_000, 7_000);
        b.add(270_000, 8_000);
        a.merge(&b);
        assert_eq!(
            a.to_string(),
            "over 5 ms: 4, in 2 of the 100 ms windows; 0.2 s: 3 (max 9.0 ms); 1.2 s: 1 (max 7.0 ms)"
        );
    }
}
