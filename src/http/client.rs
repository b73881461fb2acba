//! Who is calling: the bearer token and the client address.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::app::App;
use crate::error::AppError;
use crate::graphql::context::{AuthState, ClientInfo};

/// The client address: the peer, or, when the operator says one trusted reverse proxy sets
/// `X-Forwarded-For`, the entry that proxy appended (the rightmost). Entries further left come
/// from the client and could be anything, so they are never used.
pub fn client_info(headers: &HeaderMap, peer: SocketAddr, trust_forwarded_for: bool) -> ClientInfo {
    let forwarded = trust_forwarded_for
        .then(|| {
            headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()?
                .to_str()
                .ok()
        })
        .flatten()
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    ClientInfo {
        ip: forwarded.unwrap_or_else(|| peer.ip()).to_string(),
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
                match err {
                    AppError::Unavailable(_) => AuthState::Unchecked { unavailable: true },
                    AppError::Internal(_) | AppError::Timeout(_) => {
                        AuthState::Unchecked { unavailable: false }
                    }
                    other => AuthState::Rejected(other.to_string()),
                }
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(forwarded: Option<&str>, trust: bool) -> String {
        let mut headers = HeaderMap::new();
        if let Some(value) = forwarded {
            headers.insert("x-forwarded-for", value.parse().unwrap());
        }
        client_info(&headers, "10.0.0.9:5000".parse().unwrap(), trust).ip
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted_and_only_its_last_hop() {
        assert_eq!(ip(Some("1.2.3.4"), false), "10.0.0.9");
        assert_eq!(ip(Some("6.6.6.6, 1.2.3.4"), true), "1.2.3.4");
        assert_eq!(ip(Some("not-an-ip"), true), "10.0.0.9");
        assert_eq!(ip(None, true), "10.0.0.9");
    }
}
