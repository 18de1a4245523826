//! What resolving an image path beneath its granted folder costs, per file operation,
//! against a plain `open` of the same file by its full path in the same run.
//!
//!   cargo bench -p wasmstack --bench path_resolve
//!
//! The images capability opens every local file this way (the granted folder, then
//! the rest with no link followed), so the difference is what each file operation
//! pays for refusing links.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmstack::plugins::Beneath;

/// Mean time of `f` over enough runs to fill about `budget`.
fn time_per_call(budget: Duration, mut f: impl FnMut()) -> Duration {
    for _ in 0..1000 {
        f();
    }
    let mut runs = 0u32;
    let start = Instant::now();
    while start.elapsed() < budget {
        for _ in 0..1000 {
            f();
        }
        runs += 1000;
    }
    start.elapsed() / runs
}

fn main() {
    let root = std::env::temp_dir().join(format!("path-resolve-bench-{}", std::process::id()));
    // A pool as the drivers lay it out: <grant>/primary/volumes/<image>.
    let dir = root.join("primary/volumes");
    std::fs::create_dir_all(&dir).unwrap();
    let file: PathBuf = dir.join("vol1.qcow2");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let beneath = Beneath::new(&root, &file);
    let budget = Duration::from_secs(2);

    println!("{:<34} {:>12} {:>12} {:>8}", "operation", "plain", "beneath", "ratio");
    let row = |what: &str, plain: Duration, resolved: Duration| {
        println!(
            "{what:<34} {:>9.2} µs {:>9.2} µs {:>7.2}x",
            plain.as_secs_f64() * 1e6,
            resolved.as_secs_f64() * 1e6,
            resolved.as_secs_f64() / plain.as_secs_f64()
        );
    };

    let plain = time_per_call(budget, || drop(std::fs::File::open(&file).unwrap()));
    let resolved = time_per_call(budget, || drop(beneath.open_file(false).unwrap()));
    row("open an image (read)", plain, resolved);

    let plain = time_per_call(budget, || assert!(std::fs::symlink_metadata(&file).unwrap().is_file()));
    let resolved = time_per_call(budget, || assert!(beneath.lstat().unwrap().is_some()));
    row("look an image up (lstat)", plain, resolved);

    let new: &Path = &dir.join("new.qcow2");
    let fresh = Beneath::new(&root, new);
    let plain = time_per_call(budget, || {
        drop(std::fs::File::create_new(new).unwrap());
        std::fs::remove_file(new).unwrap();
    });
    let resolved = time_per_call(budget, || {
        drop(fresh.create_new().unwrap());
        fresh.unlink().unwrap();
    });
    row("create and remove an image", plain, resolved);

    let _ = std::fs::remove_dir_all(&root);
}
