//! The CloudStack-compatible wire protocol: what `/client/api` receives and sends, independent of
//! the HTTP server and of the commands themselves.
//!
//! - [`params`]: decoding the query string and form body, case-insensitive lookup, map
//!   parameters and typed getters.
//! - [`signing`]: API-key signature verification and signature-version-3 expiry.
//! - [`render`]: the reply model and its JSON/XML envelopes.
//! - [`error`]: error codes and texts as CloudStack reports them.
//!
//! The facts these follow are collected in `cloudstack-api.md` (the shared fact sheet).

pub mod commands;
mod console;
pub mod error;
#[cfg(test)]
mod fuzz;
pub mod http;
pub mod params;
pub mod render;
pub mod request;
pub mod signing;
mod upload;

pub use error::{ApiError, ErrorCode};
pub use params::Params;
pub use render::{Format, Reply};
