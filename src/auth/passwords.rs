//! Password hashing (argon2id, default OWASP parameters) and the password policy.
//! Hashing is CPU-bound (tens of milliseconds), so it runs on the blocking pool.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use crate::error::{AppError, AppResult};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounds the work an attacker can make us do per attempt.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Checks the policy; `field` names the input field in the error.
pub fn validate_new_password(field: &str, password: &str) -> AppResult<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("password must have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.trim().is_empty() {
        return Err(AppError::bad_input(field, "password must not be blank"));
    }
    Ok(())
}

fn hash_blocking(password: &str) -> AppResult<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| AppError::internal(anyhow::anyhow!("hashing password: {e}")))
}

/// Hashes at most this many passwords at once; a flood of logins queues here instead of
/// taking every blocking thread (and memory: each hash uses 19 MiB).
const CONCURRENT_HASHES: usize = 4;

fn hash_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(CONCURRENT_HASHES))
}

async fn on_hash_thread<T: Send + 'static>(
    work: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> AppResult<T> {
    let _permit = hash_permits().acquire().await.map_err(AppError::internal)?;
    tokio::task::spawn_blocking(work).await?
}

pub async fn hash(password: String) -> AppResult<String> {
    on_hash_thread(move || hash_blocking(&password)).await
}

/// Computes the dummy hash now, so the first login with an unknown email costs the same as
/// any other.
pub async fn warm_up() -> AppResult<()> {
    on_hash_thread(|| dummy_hash().map(|_| ())).await
}

/// Verifies `password` against a stored hash. With `None` (unknown account) it verifies against
/// a fixed dummy hash, so a wrong email costs the same time as a wrong password.
pub async fn verify(password: String, stored: Option<String>) -> AppResult<bool> {
    on_hash_thread(move || {
        let candidate = password.as_bytes();
        if candidate.len() > MAX_PASSWORD_CHARS * 4 {
            return Ok(false);
        }
        match stored {
            Some(hash) => Ok(Argon2::default()
                .verify_password(candidate, hash.as_str())
                .is_ok()),
            None => {
                let _ = Argon2::default().verify_password(candidate, dummy_hash()?);
                Ok(false)
            }
        }
    })
    .await
}

fn dummy_hash() -> AppResult<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking("timing-equaliser-not-a-real-password")?;
    Ok(DUMMY.get_or_init(|| hash))
}

/// A random password for the first admin when none was configured.
pub fn generate() -> String {
    crate::auth::tokens::random_token(18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong".into(), Some(hash)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }

    #[test]
    fn policy() {
        assert!(validate_new_password("password", "short").is_err());
        assert!(validate_new_password("password", "long enough pw").is_ok());
        assert!(validate_new_password("password", "        ").is_err());
        assert!(validate_new_password("password", &"x".repeat(300)).is_err());
    }
}
