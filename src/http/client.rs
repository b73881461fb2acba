//! Who is calling: the bearer token and the client address.

use std::net::SocketAddr;

use axum::http::HeaderMap;

use crate::app::App;
use crate::error::AppError;
use crate::graphql::context::{AuthState, ClientInfo};

/// The client address: the peer, or the first `X-Forwarded-For` hop when the operator says a
/// trusted proxy sets it (otherwise clients could pick their own address and dodge throttling).
pub fn client_info(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> ClientInfo {
    let forwarded = trust_forwarded_for
        .then(|| headers.get("x-forwarded-for")?.to_str().ok())
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    ClientInfo {
        ip: forwarded
            .map(str::to_string)
            .unwrap_or_else(|| peer.ip().to_string()),
    }
}

/// What the `Authorization` header holds.
pub enum Credential<'a> {
    None,
    Bearer(&'a str),
    Malformed,
}

pub fn bearer(headers: &HeaderMap) -> Credential<'_> {
    match headers.get(axum::http::header::AUTHORIZATION) {
        None => Credential::None,
        Some(value) => parse_bearer(value.to_str().unwrap_or("")),
    }
}

/// Accepts `Bearer <token>` (scheme case-insensitive).
pub fn parse_bearer(value: &str) -> Credential<'_> {
    let value = value.trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Credential::Bearer(token.trim())
        }
        _ if value.is_empty() => Credential::None,
        _ => Credential::Malformed,
    }
}

/// Checks the credential once per request (or WebSocket connection).
pub async fn auth_state(app: &App, credential: Credential<'_>) -> AuthState {
    match credential {
        Credential::None => AuthState::Anonymous,
        Credential::Malformed => {
            AuthState::Rejected("the Authorization header must be `Bearer <access token>`".into())
        }
        Credential::Bearer(token) => match app.auth.authenticate(token).await {
            Ok(viewer) => AuthState::Authenticated(viewer),
            Err(err) => {
                err.log_if_internal();
                let message = match err {
                    AppError::Internal(_) => "internal error".to_string(),
                    other => other.to_string(),
                };
                AuthState::Rejected(message)
            }
        },
    }
}
