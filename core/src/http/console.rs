//! The console proxy: a WebSocket at `SOCKET_PATH` that relays bytes to a VM's VNC
//! display, opened only with a ticket from createConsoleEndpoint. Every refusal is an
//! HTTP error before the upgrade, so nothing reaches the display without a valid ticket.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::orchestrate::Orchestrator;
use crate::orchestrate::consoles::{Display, Refusal};

#[derive(serde::Deserialize)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

/// Answers the upgrade request: checks the ticket, connects to the display, then relays.
pub(super) async fn socket(
    State(app): State<Arc<Orchestrator>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let session = super::session_cookie(&headers);
    let display = match app.redeem_console(q.token.as_deref(), session.as_deref()).await {
        Ok(d) => d,
        Err(refusal) => return refused(refusal),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not a WebSocket request: {e}")).into_response(),
    };
    let vnc = match TcpStream::connect((display.host.as_str(), display.port)).await {
        Ok(s) => s,
        Err(e) => {
            let Display { host, port } = display;
            tracing::warn!("console display {host}:{port}: {e}");
            return (StatusCode::BAD_GATEWAY, "the VM's display does not answer").into_response();
        }
    };
    let _ = vnc.set_nodelay(true);
    // noVNC asks for the "binary" subprotocol; plain clients ask for none.
    upgrade.protocols(["binary"]).on_upgrade(move |ws| relay(ws, vnc))
}

/// Says whether a ticket would open the console, and of which VM, without spending it.
pub(super) async fn check(
    State(app): State<Arc<Orchestrator>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    let session = super::session_cookie(&headers);
    match app.check_console(q.token.as_deref(), session.as_deref()).await {
        Ok(vm) => axum::Json(serde_json::json!({ "vm": vm })).into_response(),
        Err(refusal) => refused(refusal),
    }
}

fn refused(refusal: Refusal) -> Response {
    let status = match refusal {
        Refusal::NoToken => StatusCode::UNAUTHORIZED,
        Refusal::NotRunning(..) | Refusal::Gone(_) => StatusCode::CONFLICT,
        Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::FORBIDDEN,
    };
    (status, refusal.to_string()).into_response()
}

/// Copies both ways until either side closes.
async fn relay(mut ws: WebSocket, vnc: TcpStream) {
    let (mut vnc_rx, mut vnc_tx) = vnc.into_split();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Both reads are cancel-safe: whichever loses the race loses nothing.
        tokio::select! {
            msg = ws.recv() => {
                let bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    // Some viewers send text frames; RFB is bytes either way.
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec().into(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if vnc_tx.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            read = vnc_rx.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = vnc_tx.shutdown().await;
    let _ = ws.send(Message::Close(None)).await;
}
