//! The web console at `/client/`: the built files (see `web/`) from a folder, every
//! unknown path answered with its `index.html` (the console routes in the browser), and
//! the operator's branding at `/client/branding.json`.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use tower_http::services::{ServeDir, ServeFile};

/// Where the console is and where its branding file lives.
#[derive(Debug, Clone)]
pub struct Console {
    /// The built console (index.html, style.css, pkg/).
    pub dir: PathBuf,
    /// `branding.json`, read on each request so that edits show without a restart.
    pub branding_file: PathBuf,
}

impl Console {
    pub fn new(dir: PathBuf, data_dir: &Path) -> Console {
        if !dir.join("index.html").is_file() {
            tracing::warn!("no web console in {} (build it with scripts/build.sh, or pass --web-dir)", dir.display());
        }
        Console { dir, branding_file: data_dir.join("branding.json") }
    }

    /// The console's routes; `/client/api` stays with the API router it is merged with
    /// (a route beats a nested service).
    pub fn routes(&self) -> Router {
        // Brotli where the browser takes it (about a fifth smaller than gzip for the wasm),
        // gzip otherwise: both made at build time.
        let files = ServeDir::new(&self.dir)
            .precompressed_br()
            .precompressed_gzip()
            .fallback(ServeFile::new(self.dir.join("index.html")).precompressed_br().precompressed_gzip());
        let branding_file = self.branding_file.clone();
        Router::new()
            .route("/", get(|| async { Redirect::temporary("/client/") }))
            .route("/client/branding.json", get(move || branding(branding_file.clone())))
            .nest_service("/client", files)
            .layer(axum::middleware::map_response(revalidate))
    }
}

/// The console's files keep their names from build to build (console.js, console_bg.wasm),
/// and the two must match: browsers ask again each time (a 304 when unchanged) rather than
/// guess a lifetime from Last-Modified and pair an old script with a new module.
async fn revalidate(mut response: Response) -> Response {
    response.headers_mut().entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-cache"));
    response
}

/// The built-in look: what a missing or partial branding file falls back to.
pub fn default_branding() -> Value {
    json!({
        "product_name": "wasmstack",
        "logo_url": "",
        "colors": {
            "primary": "#1f6feb",
            "primary_text": "#ffffff",
            "background": "#f5f7fa",
            "surface": "#ffffff",
            "text": "#1f2328",
            "nav_background": "#16202c",
            "nav_text": "#e6edf3"
        },
        "footer": "",
        "links": [],
        "default_language": "en"
    })
}

/// The operator's file laid over the defaults (objects merged, other values replaced).
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

async fn branding(file: PathBuf) -> Response {
    let mut out = default_branding();
    match tokio::fs::read(&file).await {
        Ok(bytes) => match serde_json::from_slice::<Map<String, Value>>(&bytes) {
            Ok(theirs) => merge(&mut out, Value::Object(theirs)),
            Err(e) => tracing::warn!("{}: not a JSON object ({e}); using the default branding", file.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("reading {}: {e}; using the default branding", file.display()),
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        out.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_unset_defaults() {
        let mut b = default_branding();
        merge(&mut b, json!({"product_name": "Acme", "colors": {"primary": "#ff0000"}, "links": [{"label": "x"}]}));
        assert_eq!(b["product_name"], "Acme");
        assert_eq!(b["colors"]["primary"], "#ff0000");
        assert_eq!(b["colors"]["nav_text"], "#e6edf3");
        assert_eq!(b["links"][0]["label"], "x");
        assert_eq!(b["default_language"], "en");
    }
}
