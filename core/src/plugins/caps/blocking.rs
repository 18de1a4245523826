//! Host work that may wait on something outside the process (a libvirt daemon, an NFS
//! server, a hung mount) runs here, on a worker thread, while the driver call waits for
//! it only until its deadline. A blocking C call cannot be interrupted; what can be done
//! is to stop waiting for it: past the deadline the driver call ends with a timeout, its
//! store is dropped, and the worker's result is thrown away whenever it comes.

use std::sync::LazyLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::plugins::state::DeadlinePassed;

/// Workers at most, live and abandoned. A worker stuck in a call that never returns is
/// lost to the pool; when all are busy, new work queues, and its driver call still ends
/// at its deadline.
const MAX_WORKERS: usize = 512;
/// An idle worker exits after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

// Only tokio's blocking pool is used (a pool of threads that grows on demand and
// shrinks when idle); nothing is ever driven on this runtime.
static POOL: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(MAX_WORKERS)
        .thread_keep_alive(KEEP_ALIVE)
        .thread_name("host-call")
        .build()
        .expect("the host-call worker pool")
});

/// Runs `work` on a worker thread and waits for its result until `deadline`.
pub(crate) fn until<T: Send + 'static>(
    deadline: Instant,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DeadlinePassed> {
    let (tx, rx) = mpsc::sync_channel(1);
    POOL.spawn_blocking(move || {
        // The caller may have given up already; then the result goes nowhere.
        let _ = tx.send(work());
    });
    let left = deadline.saturating_duration_since(Instant::now());
    rx.recv_timeout(left).map_err(|_| DeadlinePassed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_time_and_gives_up_at_the_deadline() {
        let soon = Instant::now() + Duration::from_secs(5);
        assert_eq!(until(soon, || 7).unwrap(), 7);

        let started = Instant::now();
        let late = until(started + Duration::from_millis(100), || std::thread::sleep(Duration::from_secs(3)));
        assert!(late.is_err());
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(2), "{took:?}");
        // A stuck worker does not hold up the next call.
        assert_eq!(until(Instant::now() + Duration::from_secs(5), || "next").unwrap(), "next");
    }
}
