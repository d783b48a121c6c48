//! Where a shard's driver runs: on a thread of its own with a single-threaded
//! tokio runtime (`rtp.driver_threads`, the default).

use tokio::task::JoinHandle;

/// A driver's own single-threaded tokio runtime; without one (logged) the
/// driver runs as a task on the caller's runtime.
pub(super) fn own_runtime(index: usize) -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .inspect_err(
            |e| tracing::error!(error = %e, shard = index, "the media driver's runtime cannot start"),
        )
        .ok()
}

/// Run a driver on a thread of its own with its own single-threaded tokio
/// runtime (its sockets, timers and RTCP readers register there, and tasks
/// spawned beside its legs run there), so two drivers never wait for each other
/// on one worker and HTTP and SIP tasks never sit between a driver and its
/// packets; the OS spreads the threads over the cores. The task returned ends
/// when the driver does.
pub(super) fn on_own_thread(
    index: usize,
    runtime: tokio::runtime::Runtime,
    driver: impl std::future::Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let mut runtime = Unstarted(Some(runtime));
    let started = std::thread::Builder::new().name(format!("bond-media-{index}")).spawn(move || {
        if let Some(runtime) = runtime.0.take() {
            runtime.block_on(driver);
        }
        drop(done);
    });
    if let Err(e) = started {
        tracing::error!(error = %e, shard = index, "the media driver's thread cannot start");
    }
    tokio::spawn(async move {
        let _ = finished.await;
    })
}

/// A driver's runtime on its way to its thread. Should the thread not start,
/// the runtime is dropped on the caller's runtime, where only a shutdown that
/// does not wait is allowed.
struct Unstarted(Option<tokio::runtime::Runtime>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
