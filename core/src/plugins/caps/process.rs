//! Running the host's tools for the capabilities (qemu-img, ip, ovs-vsctl, busybox):
//! output captured, killed at a time limit, and noticed the moment they exit. A
//! deploy runs several of them one after another, so waiting by polling would add
//! its sleep to each.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A tool that ran to its end.
pub(crate) struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("waiting for {0}: {1}")]
    Wait(String, std::io::Error),
    /// It was killed at `stop`.
    #[error("{0} ran too long")]
    TooLong(String),
}

/// Runs `program` to completion with its output captured, killing it at `stop`.
pub(crate) fn run<S: AsRef<OsStr>>(program: &str, args: &[S], stop: Instant) -> Result<Finished, RunError> {
    run_with_fds(program, args, &[], stop)
}

/// The same, with the descriptors `fds` inherited by the tool under their own numbers
/// (it opens them as `/dev/fd/N`).
pub(crate) fn run_with_fds<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    fds: &[RawFd],
    stop: Instant,
) -> Result<Finished, RunError> {
    let started = Instant::now();
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if !fds.is_empty() {
        let keep = fds.to_vec();
        // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for &fd in &keep {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().map_err(|e| RunError::Spawn(program.to_owned(), e))?;
    // Pipes are drained on threads so that a chatty tool never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let exited = ExitWatch::new(child.id());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(RunError::Wait(program.to_owned(), e)),
        }
        let now = Instant::now();
        if now >= stop {
            let _ = child.kill();
            let _ = child.wait();
            let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
            tracing::warn!("{program} {shown:?} killed: it ran too long");
            return Err(RunError::TooLong(program.to_owned()));
        }
        match &exited {
            Some(w) => w.wait(stop - now),
            // Kernels before 5.3 have no pidfd: poll, briefly.
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    let shown: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "{program} {shown:?}: {status}");
    Ok(Finished { status, stdout, stderr })
}

/// A pidfd of a process: readable once it has exited.
pub(crate) struct ExitWatch(OwnedFd);

impl ExitWatch {
    /// None where the kernel has no pidfd, or the process is gone already.
    pub fn new(pid: u32) -> Option<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        // SAFETY: a non-negative result is a descriptor that only this value owns.
        (fd >= 0).then(|| ExitWatch(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }))
    }

    /// Returns when the process exits or `limit` passes, whichever is first.
    pub fn wait(&self, limit: Duration) {
        let mut pfd = libc::pollfd { fd: self.0.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = limit.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
            // Interrupted or refused: the caller looks again, so never spin.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
