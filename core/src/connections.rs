//! The HTTP listener's accept loop, in place of `axum::serve`, which keeps every connection
//! for as long as its client likes: enough clients that connect and never finish a request
//! would use up the process's file descriptors, and then nothing is accepted any more.
//!
//! Here each connection must deliver its first request's whole header within the header
//! timeout, and a kept-alive one its next request's within the idle timeout, or it is
//! closed. At most `max-connections` are open at once; when a new one comes and they all
//! are, the one idle longest (waiting for a request, not serving one) is closed to make
//! room, so that clients which hold connections open without using them cannot keep others
//! out. Only when every connection is busy serving a request is the newcomer answered 503
//! and closed. Upgrades (the console proxy's WebSockets) leave the count once upgraded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::HttpLimits;

/// File descriptors kept back from client connections: the database, the drivers' hosts,
/// plugin files and uploads need theirs too.
const FD_RESERVE: u64 = 256;

/// Serves `app` on `listener` within `limits`; returns only if accepting fails for good.
pub async fn serve(listener: TcpListener, app: Router, limits: HttpLimits) -> std::io::Result<()> {
    let registry = Arc::new(Registry::new(limits));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: the connection waits in the backlog until
                // some are closed; trying again at once would only spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((id, slot)) = registry.admit() else {
            // Every connection is serving a request: a short, certain refusal.
            let _ = stream.try_write(BUSY);
            continue;
        };
        let (registry, app) = (registry.clone(), app.clone());
        tokio::spawn(async move {
            connection(stream, app, &registry, slot).await;
            registry.release(id);
        });
    }
}

const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n";

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

/// Raises the soft limit on open files to the hard one, and returns the connection cap
/// that fits under it with `FD_RESERVE` to spare (at most `wanted`).
pub fn fit_connections(wanted: usize) -> (usize, u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read the one struct passed.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (wanted, 0);
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        lim.rlim_cur
    };
    let room = soft.saturating_sub(FD_RESERVE).max(soft / 2).max(1);
    (wanted.min(usize::try_from(room).unwrap_or(usize::MAX)), soft)
}

/// One open connection, as the accept loop sees it.
struct Slot {
    /// Requests being served, their response bodies included.
    busy: AtomicUsize,
    /// Since when (ms from the registry's epoch) the connection has waited for a request;
    /// `u64::MAX` until its first request was served (the header timeout applies then).
    idle_since: AtomicU64,
    accepted: u64,
    /// Told to close by the accept loop, to make room.
    close: Notify,
}

struct Registry {
    epoch: Instant,
    limits: HttpLimits,
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next: AtomicU64,
}

impl Registry {
    fn new(limits: HttpLimits) -> Self {
        Registry { epoch: Instant::now(), limits, slots: Mutex::default(), next: AtomicU64::new(0) }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A slot for a new connection, made by closing the longest-idle one when all are
    /// taken; none when every connection is busy.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.len() >= self.limits.max_connections {
            let (&oldest, _) = slots
                .iter()
                .filter(|(_, s)| s.busy.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, s)| s.waiting_since())?;
            let slot = slots.remove(&oldest).expect("just found");
            // Stored if the connection's task is not waiting yet: the close is never lost.
            slot.close.notify_one();
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now();
        let slot = Arc::new(Slot {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(u64::MAX),
            accepted: now,
            close: Notify::new(),
        });
        slots.insert(id, slot.clone());
        Some((id, slot))
    }

    fn release(&self, id: u64) {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }

    /// When an idle connection's wait for a request runs out; none while it is busy.
    fn deadline(&self, slot: &Slot) -> Option<u64> {
        if slot.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(match slot.idle_since.load(Ordering::Acquire) {
            u64::MAX => slot.accepted + self.limits.header_timeout.as_millis() as u64,
            since => since + self.limits.idle_timeout.as_millis() as u64,
        })
    }
}

impl Slot {
    fn waiting_since(&self) -> u64 {
        match self.idle_since.load(Ordering::Acquire) {
            u64::MAX => self.accepted,
            since => since,
        }
    }
}

/// Serves one connection until it ends, times out or is told to close.
async fn connection(stream: TcpStream, app: Router, registry: &Arc<Registry>, slot: Arc<Slot>) {
    let service = {
        let (registry, slot) = (registry.clone(), slot.clone());
        let app = TowerToHyperService::new(app);
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::start(&registry, &slot);
            let response = hyper::service::Service::call(&app, req);
            async move {
                let response = response.await?;
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _busy: busy }))
            }
        })
    };
    let limits = registry.limits;
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer also runs while a kept-alive connection waits, so it
    // backs up both of ours; they decide first.
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout.max(limits.idle_timeout));
    let conn = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
    tokio::pin!(conn);
    loop {
        let wake = match registry.deadline(&slot) {
            Some(at) => registry.epoch + Duration::from_millis(at),
            // Serving: look again after an idle timeout, by when it may have gone idle.
            None => Instant::now() + limits.idle_timeout,
        };
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!("connection: {e}");
                }
                return;
            }
            _ = slot.close.notified() => {
                // Picked as idle, but a request came in meanwhile: it is served first.
                if slot.busy.load(Ordering::Acquire) == 0 {
                    return;
                }
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(wake) => {
                if registry.deadline(&slot).is_some_and(|at| at <= registry.now()) {
                    return;
                }
            }
        }
    }
}

/// Marks a connection busy for as long as it lives: from a request's header to the end of
/// its response's body.
struct Busy {
    registry: Arc<Registry>,
    slot: Arc<Slot>,
}

impl Busy {
    fn start(registry: &Arc<Registry>, slot: &Arc<Slot>) -> Self {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy { registry: registry.clone(), slot: slot.clone() }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.slot.idle_since.store(self.registry.now(), Ordering::Release);
        self.slot.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its connection marked busy until it is sent or dropped.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn a_full_house_makes_room_from_idle_connections_only() {
        let limits = HttpLimits { max_connections: 2, ..HttpLimits::default() };
        let registry = Arc::new(Registry::new(limits));
        let (_, idle) = registry.admit().unwrap();
        let (_, serving) = registry.admit().unwrap();
        let busy = Busy::start(&registry, &serving);
        let (_, third) = registry.admit().expect("room made");
        assert!(idle.close.notified().now_or_never().is_some(), "the idle connection is told to close");
        assert!(serving.close.notified().now_or_never().is_none(), "the serving one is left alone");
        let _also_busy = Busy::start(&registry, &third);
        assert!(registry.admit().is_none(), "every connection is serving: no room");
        drop(busy);
        assert!(registry.admit().is_some(), "one went idle: room again");
        assert_eq!(registry.slots.lock().unwrap().len(), 2);
    }

    #[test]
    fn the_connection_cap_fits_the_open_file_limit() {
        let (fitted, open_files) = fit_connections(usize::MAX);
        assert!(open_files > 0 && (fitted as u64) < open_files, "{fitted} of {open_files}");
        assert_eq!(fit_connections(10).0, 10);
    }
}
