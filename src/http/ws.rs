//! `/graphql/ws`: subscriptions over WebSocket, speaking graphql-transport-ws and the legacy
//! graphql-ws protocol. The access token comes in the `connection_init` payload as
//! `{"Authorization": "Bearer <token>"}` (also accepted: `authorization`, `token`,
//! `accessToken`). A bad token refuses the connection; no token connects anonymously and
//! subscriptions that need a user answer UNAUTHENTICATED.
//!
//! The server closes a connection itself when its access token expires (4401), its session
//! ends or its user is deactivated (4401), its user's role changes (4403), one of its live
//! subscriptions falls too far behind (1008), the process's live feed was interrupted (1012)
//! or the server stops (1001).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{
    WebSocket as GraphqlSocket, WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS,
};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::client::{auth_state, client_info, parse_bearer, Credential};
use super::AppState;
use crate::events::live::{CloseReason, Closer};
use crate::graphql::context::{request_data, AuthState, ClientInfo, Lifetime};

/// Read buffer per connection. tungstenite's default (128 KiB, allocated up front) would make
/// an idle subscriber cost more than everything else it holds; messages larger than this
/// still arrive (the buffer grows), up to the body limit.
const READ_BUFFER: usize = 4 * 1024;
/// How long a closing connection may take to flush what it owes before its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Close codes the server ends a connection with (graphql-ws uses 44xx for auth).
fn close_frame(reason: CloseReason) -> (u16, &'static str) {
    match reason {
        CloseReason::TooSlow => (
            1008,
            "subscriber too slow: events came faster than it read them",
        ),
        CloseReason::SessionEnded => (4401, "session ended; log in again"),
        CloseReason::RoleChanged => (4403, "your role changed; reconnect"),
        CloseReason::Missed => (1012, "live feed interrupted; reconnect and refetch"),
    }
}
const EXPIRED: (u16, &str) = (4401, "access token expired; reconnect with a new one");
const SHUTTING_DOWN: (u16, &str) = (1001, "server shutting down");

pub async fn subscriptions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(protocol) = graphql_protocol(&headers) else {
        let message = "ask for a GraphQL WebSocket protocol: graphql-transport-ws or graphql-ws";
        return (StatusCode::BAD_REQUEST, message).into_response();
    };
    let client = client_info(&headers, peer, state.app.config.http.trust_forwarded_for);
    let max_message = state.app.config.http.body_limit_bytes;
    upgrade
        .max_message_size(max_message)
        .read_buffer_size(READ_BUFFER)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(state, socket, protocol, client))
}

/// Runs one connection: GraphQL messages both ways, until the client leaves, the protocol
/// ends it, or the server closes it (slow subscriber, ended session, expired token, shutdown).
async fn serve_socket(
    state: AppState,
    socket: WebSocket,
    protocol: WebSocketProtocols,
    client: ClientInfo,
) {
    let (mut sink, stream) = socket.split();
    let (close_tx, mut close_rx) = mpsc::unbounded_channel::<(u16, &'static str)>();
    let (expiry_tx, expiry_rx) = watch::channel(None::<DateTime<Utc>>);
    let input = stream
        .take_while(|message| futures_util::future::ready(message.is_ok()))
        .filter_map(|message| {
            futures_util::future::ready(match message {
                Ok(message @ (Message::Text(_) | Message::Binary(_))) => Some(message.into_data()),
                _ => None,
            })
        });
    let app = state.app.clone();
    let graphql = GraphqlSocket::new(state.ws_schema.clone(), input, protocol).on_connection_init(
        move |payload| async move {
            let token = token_from_payload(&payload);
            let credential = match token.as_deref() {
                Some(value) => parse_bearer(value),
                None => Credential::None,
            };
            let auth = auth_state(&app, credential).await;
            if let AuthState::Rejected(reason) = auth {
                return Err(async_graphql::Error::new(reason));
            }
            let live = match &auth {
                AuthState::Authenticated(viewer) => {
                    expiry_tx.send_replace(Some(viewer.token_expires_at));
                    let closer: Closer = Arc::new(move |reason| {
                        let _ = close_tx.send(close_frame(reason));
                    });
                    Some(app.live.connect(viewer, closer))
                }
                _ => None,
            };
            let mut data = request_data(app.clone(), auth, client, Lifetime::Connection);
            if let Some(live) = live {
                data.insert(live);
            }
            Ok(data)
        },
    );
    let mut graphql = std::pin::pin!(graphql);
    let close: Option<(u16, std::borrow::Cow<'static, str>)> = loop {
        let outgoing = tokio::select! {
            close = closing(&mut close_rx, &expiry_rx, &state.shutdown) => break Some((close.0, close.1.into())),
            message = graphql.next() => message,
        };
        let message = match outgoing {
            None => break None,
            // The protocol's own close (a bad message, a second init): sent like ours.
            Some(WsMessage::Close(code, reason)) => {
                break Some((code, std::borrow::Cow::Owned(reason)))
            }
            Some(WsMessage::Text(text)) => Message::Text(text.into()),
        };
        // A client that stops reading blocks this send; closing must still win.
        tokio::select! {
            close = closing(&mut close_rx, &expiry_rx, &state.shutdown) => break Some((close.0, close.1.into())),
            sent = sink.send(message) => if sent.is_err() { break None },
        }
    };
    if let Some((code, reason)) = close {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into_owned().into(),
        }));
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(frame)).await;
    }
}

/// The first protocol the client offers that we speak.
fn graphql_protocol(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    use std::str::FromStr;
    headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)?
        .to_str()
        .ok()?
        .split(',')
        .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
}

/// Resolves when the server must close the connection, with the code and reason.
async fn closing(
    closes: &mut mpsc::UnboundedReceiver<(u16, &'static str)>,
    expiry: &watch::Receiver<Option<DateTime<Utc>>>,
    shutdown: &CancellationToken,
) -> (u16, &'static str) {
    let expires_at = *expiry.borrow();
    let expired = async {
        match expires_at {
            Some(at) => {
                let left = (at - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(left).await
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        Some(close) = closes.recv() => close,
        _ = expired => EXPIRED,
        _ = shutdown.cancelled() => SHUTTING_DOWN,
    }
}

/// The token from a `connection_init` payload; a bare token (no "Bearer ") is accepted too.
fn token_from_payload(payload: &serde_json::Value) -> Option<String> {
    ["Authorization", "authorization", "token", "accessToken"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
        .map(|value| {
            let value = value.trim();
            if value.contains(' ') {
                value.to_string()
            } else {
                format!("Bearer {value}")
            }
        })
}
