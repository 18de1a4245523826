//! The upload endpoint for driver components: `POST UPLOAD_PATH/<id>` with the file as
//! multipart/form-data (field `file`, and its `NAME.wasm.sig` as field `signature` where the
//! server takes only signed plugins) and the `X-signature`, `X-expires` and `X-metadata`
//! headers from getUploadParamsForPlugin, as CloudStack's browser uploads of templates do.
//! Replies in the API's JSON envelope (`uploadpluginresponse`), errors with their code as
//! the HTTP status.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use crate::api::error::ApiError;
use crate::api::render::{Format, Reply, render};
use crate::orchestrate::Orchestrator;
use crate::orchestrate::plugins_api::{MAX_UPLOAD, too_large};

/// The reply's wrapper: `uploadpluginresponse`.
const COMMAND: &str = "uploadPlugin";
/// Room for the multipart framing around the file.
const FRAMING: usize = 64 << 10;

/// Answers one upload.
pub(super) async fn plugin(
    State(app): State<Arc<Orchestrator>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let reply = match receive(&app, &id, &headers, body).await {
        Ok(r) => r,
        Err(e) => Reply::Error(e),
    };
    let status = StatusCode::from_u16(reply.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, Format::Json.content_type())
        .header("X-Content-Type-Options", "nosniff")
        .body(Body::from(render(Format::Json, Some(COMMAND), &reply)))
        .expect("a valid response")
}

async fn receive(app: &Orchestrator, id: &str, headers: &HeaderMap, body: Body) -> Result<Reply, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    // The parameters are spent before the body is read: one POST per getUploadParamsForPlugin.
    let file_name = app.redeem_plugin_upload(id, header("x-signature"), header("x-expires"), header("x-metadata"))?;
    let declared = header(header::CONTENT_LENGTH.as_str()).parse::<usize>().ok();
    if declared.is_some_and(|n| n > MAX_UPLOAD + FRAMING) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, MAX_UPLOAD + FRAMING).await.map_err(|_| too_large())?;
    let content_type = header(header::CONTENT_TYPE.as_str());
    let file = part(content_type, &bytes, "file")
        .map_err(ApiError::invalid_param)?
        .ok_or_else(|| ApiError::invalid_param("The upload has no field named file"))?;
    let signature = part(content_type, &bytes, "signature").map_err(ApiError::invalid_param)?;
    app.install_plugin_upload(&file_name, file.to_vec(), signature.map(<[u8]>::to_vec)).await
}

/// The content of the field `name` of a multipart/form-data body, if it has one.
fn part<'a>(content_type: &str, body: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, String> {
    let not_multipart = || "Send the file as multipart/form-data with the field file".to_owned();
    let mut parts = content_type.split(';').map(str::trim);
    if !parts.next().is_some_and(|t| t.eq_ignore_ascii_case("multipart/form-data")) {
        return Err(not_multipart());
    }
    let boundary = parts
        .find_map(|p| p.strip_prefix("boundary=").or_else(|| p.strip_prefix("BOUNDARY=")))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(not_multipart)?;
    let malformed = || "The multipart/form-data body is malformed".to_owned();
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body.strip_prefix(&delimiter.as_bytes()[2..]).ok_or_else(malformed)?;
    let (quoted, bare) = (format!("name=\"{name}\""), format!("name={name}"));
    loop {
        if rest.starts_with(b"--") {
            return Ok(None);
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(malformed)?;
        let head_end = find(rest, b"\r\n\r\n").ok_or_else(malformed)?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let content = &rest[head_end + 4..];
        let end = find(content, delimiter.as_bytes()).ok_or_else(malformed)?;
        let wanted = head.lines().any(|line| {
            line.starts_with("content-disposition:") && line.split(';').map(str::trim).any(|p| p == quoted || p == bare)
        });
        if wanted {
            return Ok(Some(&content[..end]));
        }
        rest = &content[end + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::part;

    fn file_part<'a>(content_type: &str, body: &'a [u8]) -> Result<&'a [u8], String> {
        part(content_type, body, "file")?.ok_or_else(|| "no field named file".to_owned())
    }

    #[test]
    fn finds_the_file_field() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wasm\"\r\nContent-Type: application/wasm\r\n\r\n\0asm\r\n\x01--XyZ\r\n--XyZ--\r\n";
        assert_eq!(file_part("multipart/form-data; boundary=XyZ", body).unwrap(), b"\0asm\r\n\x01--XyZ");
        assert_eq!(file_part("multipart/form-data; boundary=\"XyZ\"", body).unwrap(), b"\0asm\r\n\x01--XyZ");
        assert_eq!(part("multipart/form-data; boundary=XyZ", body, "note").unwrap(), Some(&b"hello"[..]));
        assert_eq!(part("multipart/form-data; boundary=XyZ", body, "signature").unwrap(), None);
        let none = b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\nx\r\n--XyZ--\r\n";
        assert!(file_part("multipart/form-data; boundary=XyZ", none).unwrap_err().contains("no field named file"));
        assert!(file_part("application/octet-stream", body).unwrap_err().contains("multipart/form-data"));
        assert!(file_part("multipart/form-data; boundary=Other", body).unwrap_err().contains("malformed"));
    }
}
