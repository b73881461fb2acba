//! `/graphql/ws`: subscriptions over WebSocket, speaking graphql-transport-ws and the legacy
//! graphql-ws protocol. The access token comes in the `connection_init` payload as
//! `{"Authorization": "Bearer <token>"}` (also accepted: `authorization`, `token`,
//! `accessToken`). A bad token refuses the connection; no token connects anonymously and
//! subscriptions that need a user answer UNAUTHENTICATED.

use std::net::SocketAddr;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::client::{auth_state, client_info, parse_bearer, Credential};
use super::AppState;
use crate::graphql::context::{request_data, AuthState, Lifetime};

pub async fn subscriptions(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = client_info(&headers, peer, state.app.config.http.trust_forwarded_for);
    let max_message = state.app.config.http.body_limit_bytes;
    upgrade
        .max_message_size(max_message)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let app = state.app.clone();
            let connection = GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = token_from_payload(&payload);
                    let credential = match token.as_deref() {
                        Some(value) => parse_bearer(value),
                        None => Credential::None,
                    };
                    match auth_state(&app, credential).await {
                        AuthState::Rejected(reason) => Err(async_graphql::Error::new(reason)),
                        auth => Ok(request_data(
                            app.clone(),
                            auth,
                            client,
                            Lifetime::Connection,
                        )),
                    }
                })
                .serve();
            // Server shutdown closes open subscriptions instead of waiting for clients.
            tokio::select! {
                _ = connection => {}
                _ = state.shutdown.cancelled() => {}
            }
        })
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
