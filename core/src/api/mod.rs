//! The CloudStack-compatible wire protocol: what `/client/api` receives and sends, independent of
//! the HTTP server and of the commands themselves.
//!
//! - [`params`]: decoding the query string and form body, case-insensitive lookup, map
//!   parameters and typed getters.
//! - [`signing`]: API-key signature verification and signature-version-3 expiry.
//! - [`render`]: the reply model and its JSON/XML envelopes.
//! - [`error`]: error codes and texts as CloudStack reports them.
//!
//! Nothing here knows the orchestrator: the `http` module serves this protocol and hands the
//! typed requests to it.

pub mod commands;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod params;
pub mod render;
pub mod request;
pub mod signing;

pub use error::{ApiError, ErrorCode};
pub use params::Params;
pub use render::{Format, Reply};

#[cfg(test)]
mod layering {
    /// The wire protocol stays below the orchestrator: nothing in `api/` may use it, so
    /// the orchestrator can depend on the typed requests without a cycle.
    #[test]
    fn the_wire_protocol_does_not_know_the_orchestrator() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("reading src/api") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("reading a source file");
                    // Spelt in two pieces so that this file does not match itself.
                    let above = [concat!("crate::", "orchestrate"), concat!("crate::", "http")];
                    if above.iter().any(|needle| text.contains(needle)) {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api"), &mut found);
        assert!(found.is_empty(), "these files in api/ use the layers above it: {found:?}");
    }
}
