//! The cores the recognizer's workers share.
//!
//! whisper.cpp's threads wait for each other by spinning, so the workers
//! together never run more threads than the budget. A job that nothing else
//! wants a core for takes every free one (the quickest answer for one call);
//! jobs queued behind others take one core each, so two utterances run side by
//! side instead of one after the other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Debug)]
pub(super) struct Cores {
    state: Mutex<State>,
    freed: Condvar,
    workers: usize,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// Jobs holding cores.
    running: usize,
}

/// Cores held by one job, given back when dropped.
#[derive(Debug)]
pub(super) struct Share<'a> {
    cores: &'a Cores,
    pub threads: usize,
}

impl Cores {
    pub fn new(budget: usize, workers: usize) -> Self {
        let state = State { free: budget.max(1), running: 0 };
        Self { state: Mutex::new(state), freed: Condvar::new(), workers: workers.max(1) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wait for at least one core. `jobs` counts the jobs queued or running,
    /// this one included.
    pub fn take(&self, jobs: &AtomicUsize) -> Share<'_> {
        let mut state = self.lock();
        loop {
            let others = jobs.load(Ordering::Relaxed).saturating_sub(state.running + 1);
            let idle_workers = self.workers.saturating_sub(state.running);
            let threads = threads_for(state.free, others, idle_workers);
            if threads > 0 {
                state.free -= threads;
                state.running += 1;
                return Share { cores: self, threads };
            }
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        let mut state = self.cores.lock();
        state.free += self.threads;
        state.running -= 1;
        drop(state);
        self.cores.freed.notify_all();
    }
}

/// Threads for a job when `free` cores are free, `others` jobs wait for a core
/// and `idle_workers` workers (this one included) could run them: the free
/// cores split between the jobs that can start now; 0 means wait.
fn threads_for(free: usize, others: usize, idle_workers: usize) -> usize {
    if free == 0 {
        return 0;
    }
    let starting = (1 + others).min(idle_workers).max(1);
    (free / starting).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_alone_takes_every_free_core() {
        assert_eq!(threads_for(2, 0, 2), 2);
        assert_eq!(threads_for(4, 0, 1), 4);
    }

    #[test]
    fn jobs_queued_together_split_the_cores_between_the_idle_workers() {
        assert_eq!(threads_for(2, 1, 2), 1);
        assert_eq!(threads_for(2, 5, 2), 1);
        assert_eq!(threads_for(4, 1, 2), 2);
        // One worker runs the queue one job at a time, on every core.
        assert_eq!(threads_for(2, 3, 1), 2);
    }

    #[test]
    fn a_job_waits_while_no_core_is_free() {
        assert_eq!(threads_for(0, 0, 1), 0);
    }

    #[test]
    fn cores_taken_are_given_back_and_never_overspent() {
        let cores = Cores::new(2, 2);
        let jobs = AtomicUsize::new(2);
        let first = cores.take(&jobs);
        assert_eq!(first.threads, 1, "another job is waiting");
        let second = cores.take(&jobs);
        assert_eq!(second.threads, 1);
        drop(first);
        jobs.store(1, Ordering::Relaxed);
        drop(second);
        assert_eq!(cores.take(&jobs).threads, 2, "alone again");
    }

    #[test]
    fn a_job_blocked_for_a_core_starts_when_one_is_given_back() {
        let cores = std::sync::Arc::new(Cores::new(1, 2));
        let jobs = std::sync::Arc::new(AtomicUsize::new(2));
        let held = cores.take(&jobs);
        let (c, j) = (cores.clone(), jobs.clone());
        let waiter = std::thread::spawn(move || c.take(&j).threads);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "no core was free");
        jobs.store(1, Ordering::Relaxed);
        drop(held);
        assert_eq!(waiter.join().unwrap(), 1);
    }
}
