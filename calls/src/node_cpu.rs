//! This process's CPU, for the load a node reports with its lease
//! (`membership.rs`): the user and system time Linux counts for it in
//! `/proc/self/stat`, between two readings, over the time between them.

use std::time::Instant;

/// Clock ticks a second in `/proc` (`USER_HZ`, 100 on every Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// The process's CPU time (in ticks) as last read, and when.
#[derive(Debug, Default)]
pub(crate) struct CpuSampler {
    last: Option<(Instant, u64)>,
}

impl CpuSampler {
    /// Percent of one core used since the last reading (0 the first time, or
    /// where `/proc` cannot be read).
    pub(crate) fn percent(&mut self, now: Instant) -> i64 {
        let Some(ticks) = std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(cpu_ticks)
        else {
            return 0;
        };
        let percent = match self.last {
            Some((at, before)) if now > at => {
                let busy = ticks.saturating_sub(before) as f64 / TICKS_PER_SECOND;
                (busy / now.duration_since(at).as_secs_f64() * 100.0).round() as i64
            }
            _ => 0,
        };
        self.last = Some((now, ticks));
        percent
    }
}

/// utime + stime from a `/proc/<pid>/stat` line: fields 14 and 15, counted
/// after the command name (which may hold spaces, so from its closing `)`).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_time_is_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (bond (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(325));
        assert_eq!(cpu_ticks("garbage"), None);
    }
}
