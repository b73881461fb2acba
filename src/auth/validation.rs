//! Input rules for account fields, each in one place.

use crate::error::{AppError, AppResult};

pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 200;

/// Trims and lower-cases an email address and checks its shape (`local@domain`, no spaces).
/// Deliverability is not checked: `admin@localhost` is a valid login.
pub fn normalize_email(field: &str, raw: &str) -> AppResult<String> {
    let email = raw.trim().to_lowercase();
    let bad = |message: &str| Err(AppError::bad_input(field, message));
    if email.is_empty() {
        return bad("email must not be empty");
    }
    if email.chars().count() > MAX_EMAIL_CHARS {
        return bad("email must have at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("email must not contain spaces");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return bad("email must look like name@example.com");
    };
    if local.is_empty()
        || local.len() > 64
        || domain.is_empty()
        || domain.contains('@')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return bad("email must look like name@example.com");
    }
    Ok(email)
}

/// A display name: trimmed, 1 to 200 characters.
pub fn validate_name(field: &str, raw: &str) -> AppResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AppError::bad_input(
            field,
            format!("{field} must have at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email("email", "  Dana@Example.COM ").unwrap(),
            "dana@example.com"
        );
        assert!(normalize_email("email", "admin@localhost").is_ok());
        for bad in [
            "", "nobody", "a@", "@b.c", "a b@c.d", "a@b@c", "a@.com", "a@b..c",
        ] {
            assert!(normalize_email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("name", " Dana ").unwrap(), "Dana");
        assert!(validate_name("name", "  ").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
    }
}
