//! Access tokens (HS256 JWTs) and opaque refresh tokens.
//!
//! An access token names the user, the workspace and the session (`sid`, the refresh-token
//! family). `AuthService::authenticate` checks the session is still live on every request, so
//! logout and password changes end access at once, not after the token's lifetime.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::viewer::{UserId, WorkspaceId};
use crate::error::{AppError, AppResult};

const ISSUER: &str = "mycrm";
const ACCESS_TOKEN_TYPE: &str = "access";
/// Clock skew tolerated between servers.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user ID.
    pub sub: String,
    /// The workspace ID.
    pub wid: i64,
    /// The session (refresh-token family).
    pub sid: Uuid,
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

impl AccessClaims {
    pub fn user_id(&self) -> AppResult<UserId> {
        self.sub
            .parse()
            .map(UserId)
            .map_err(|_| AppError::unauthenticated("invalid access token"))
    }
}

/// Signing keys and lifetimes. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub access_ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_ttl,
        }
    }

    /// Signs an access token; returns it with its expiry.
    pub fn issue_access(
        &self,
        user: UserId,
        workspace: WorkspaceId,
        session: Uuid,
    ) -> AppResult<(String, DateTime<Utc>)> {
        let now = Utc::now();
        let expires_at =
            now + chrono::Duration::from_std(self.access_ttl).map_err(AppError::internal)?;
        let claims = AccessClaims {
            iss: ISSUER.into(),
            sub: user.0.to_string(),
            wid: workspace.0,
            sid: session,
            typ: ACCESS_TOKEN_TYPE.into(),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|e| AppError::internal(anyhow::anyhow!("signing access token: {e}")))?;
        Ok((token, expires_at))
    }

    /// Checks signature, issuer, type and expiry. The answer never says more than
    /// "expired" or "invalid".
    pub fn decode_access(&self, token: &str) -> AppResult<AccessClaims> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AppError::unauthenticated("access token expired"),
                _ => AppError::unauthenticated("invalid access token"),
            })?;
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return Err(AppError::unauthenticated("invalid access token"));
        }
        Ok(data.claims)
    }
}

/// `bytes` random bytes from the OS, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Refresh tokens are stored only as this digest; they are random, so no salt or slow hash is
/// needed.
pub fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Prefix that makes MyCRM refresh tokens recognisable (e.g. by secret scanners).
pub const REFRESH_TOKEN_PREFIX: &str = "mcr_";

pub fn new_refresh_token() -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", random_token(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_key() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let sid = Uuid::new_v4();
        let (token, _) = keys.issue_access(UserId(7), WorkspaceId(3), sid).unwrap();
        let claims = keys.decode_access(&token).unwrap();
        assert_eq!(claims.user_id().unwrap(), UserId(7));
        assert_eq!(claims.wid, 3);
        assert_eq!(claims.sid, sid);

        let other = TokenKeys::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        let err = other.decode_access(&token).unwrap_err();
        assert_eq!(err.to_string(), "invalid access token");
    }
}
