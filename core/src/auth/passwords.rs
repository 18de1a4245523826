//! Passwords are stored as salted Argon2id hashes (PHC strings).
//!
//! A hash takes ~15-30 ms of CPU and 19 MiB of memory by design. Computed on the async
//! workers, a burst of logins stalled every other request. Computed each in a fresh
//! allocation, they grew the process by gigabytes that were never given back: once a
//! 19 MiB block has been freed, glibc raises its mmap threshold above that size, so the
//! next ones come from the heap, where the small allocations of the requests in flight
//! split the freed blocks and the heap only grows (fewer malloc arenas do not help).
//! So hashes run on a few threads of their own (`set_threads`, by default half the CPUs,
//! 1 to 4), one at a time per thread, each thread reusing one block buffer for its whole
//! life: at most threads × 19 MiB, allocated once. Requests queue for them in arrival order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

// Memory-hard but quick enough for an interactive login on a small server (~15 ms).
fn hasher() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters"),
    )
}

/// A well-formed hash of no one's password: checking a password against it costs what
/// checking a real one costs, so a login for an unknown user takes as long as for a known one.
pub const NO_ONE: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$bm8tb25lLW5vLXNhbHQ$2Wq1hVTRn6M0Qvs1hxZr1yK1zT/3MmVFhzgX0yl4b3g";

/// Hashes a password with a fresh salt.
pub async fn hash(password: &str) -> String {
    let (reply, answer) = oneshot::channel();
    pool().submit(Job::Hash { password: password.to_owned(), reply });
    answer.await.expect("the password threads are running")
}

/// Whether `password` matches a stored hash.
pub async fn verify(password: &str, stored: &str) -> bool {
    let (reply, answer) = oneshot::channel();
    pool().submit(Job::Verify { password: password.to_owned(), stored: stored.to_owned(), reply });
    answer.await.expect("the password threads are running")
}

static THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: OnceLock<Pool> = OnceLock::new();

/// How many hashes run at once; takes effect if called before the first hash.
pub fn set_threads(n: usize) {
    THREADS.store(n.max(1), Ordering::Relaxed);
}

fn pool() -> &'static Pool {
    POOL.get_or_init(|| {
        let n = match THREADS.load(Ordering::Relaxed) {
            0 => crate::config::LoginPolicy::default().hash_threads,
            n => n,
        };
        Pool::start(n)
    })
}

enum Job {
    Hash { password: String, reply: oneshot::Sender<String> },
    Verify { password: String, stored: String, reply: oneshot::Sender<bool> },
}

struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Pool {
    fn start(threads: usize) -> Pool {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || worker(&queue))
                .expect("starting a password thread");
        }
        Pool { jobs: Mutex::new(jobs) }
    }

    fn submit(&self, job: Job) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).send(job).expect("the password threads are running");
    }
}

fn worker(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut blocks: Vec<Block> = Vec::new();
    loop {
        let job = match queue.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        if blocks.is_empty() {
            blocks = vec![Block::default(); hasher().params().block_count()];
        }
        match job {
            // A request that went away (its client hung up) needs no answer.
            Job::Hash { reply, .. } if reply.is_closed() => {}
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(&password, &mut blocks));
            }
            Job::Verify { reply, .. } if reply.is_closed() => {}
            Job::Verify { password, stored, reply } => {
                let _ = reply.send(verify_with(&password, &stored, &mut blocks));
            }
        }
    }
}

/// A PHC string as `argon2`'s `PasswordHasher` writes it, computed in `blocks`.
fn hash_with(password: &str, blocks: &mut [Block]) -> String {
    let argon = hasher();
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut out = [0u8; 32];
    argon.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks).expect("hashing a password");
    let salt = SaltString::encode_b64(&salt).expect("a valid salt");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon.params().try_into().expect("valid Argon2 parameters"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("a valid output length")),
    }
    .to_string()
}

/// Checks a password against a stored hash of any Argon2 parameters, in `blocks` when they
/// are large enough (hashes made here always fit).
fn verify_with(password: &str, stored: &str, blocks: &mut [Block]) -> bool {
    let Ok(h) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else { return false };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&h) else { return false };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let n = argon.params().block_count();
    let done = match blocks.get_mut(..n) {
        Some(blocks) => argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, blocks),
        None => argon.hash_password_into(password.as_bytes(), salt, &mut out),
    };
    done.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// A random password an operator can type: 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn round_trip_and_salt() {
        let a = hash("s3cret").await;
        let b = hash("s3cret").await;
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("s3cret", &a).await);
        assert!(!verify("s3cret!", &a).await);
        assert!(!verify("s3cret", "not a hash").await);
        assert!(!verify("", NO_ONE).await);
        assert_eq!(generate().len(), 20);
    }

    #[test]
    fn same_strings_as_the_argon2_crate() {
        let mut blocks = vec![Block::default(); hasher().params().block_count()];
        // Ours verify with the crate's verifier, and the crate's with ours.
        let ours = hash_with("pw", &mut blocks);
        assert!(hasher().verify_password(b"pw", &PasswordHash::new(&ours).unwrap()).is_ok());
        let theirs = hasher().hash_password(b"pw", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert_eq!(theirs.split('$').take(4).collect::<Vec<_>>(), ours.split('$').take(4).collect::<Vec<_>>());
        assert!(verify_with("pw", &theirs, &mut blocks));
        assert!(!verify_with("pw!", &theirs, &mut blocks));
        // A hash with more memory than the buffer still verifies (in its own allocation).
        let big = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(32 * 1024, 1, 1, None).unwrap());
        let big = big.hash_password(b"pw", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(verify_with("pw", &big, &mut blocks));
        assert!(PasswordHash::new(NO_ONE).is_ok(), "NO_ONE parses");
    }
}
