//! Input rules shared by every domain, each in one place.

use crate::error::{AppError, AppResult};

pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_NAME_CHARS: usize = 200;

/// The text rule every input passes through, before any other: no NUL character. PostgreSQL
/// cannot store U+0000 in text or JSON, so a NUL that got through would fail the statement
/// (an INTERNAL error) instead of naming the field. GraphQL applies it to every string of a
/// request (`graphql::screen`), the REST routes to their fields.
pub fn reject_nul(field: &str, text: &str) -> AppResult<()> {
    if text.contains('\0') {
        return Err(AppError::bad_input(field, NUL_MESSAGE));
    }
    Ok(())
}

/// What a NUL refusal says.
pub const NUL_MESSAGE: &str = "text must not contain the NUL character (U+0000)";

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

/// An optional free-text field: trimmed, empty means absent, at most `max` characters.
pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> AppResult<Option<String>> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must have at most {max} characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// A required free-text field: trimmed, 1 to `max` characters.
pub fn required_text(field: &str, raw: &str, max: usize) -> AppResult<String> {
    optional_text(field, Some(raw), max)?
        .ok_or_else(|| AppError::bad_input(field, format!("{field} must not be empty")))
}

/// An optional email: normalised like a login email.
pub fn optional_email(field: &str, raw: Option<&str>) -> AppResult<Option<String>> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        Some(email) => normalize_email(field, email).map(Some),
        None => Ok(None),
    }
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 50;

/// Tags: trimmed, empty ones dropped, duplicates (ignoring case) removed, bounded in number and
/// length.
pub fn tags(field: &str, raw: &[String]) -> AppResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for tag in raw.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(AppError::bad_input(
                field,
                format!("a tag must have at most {MAX_TAG_CHARS} characters"),
            ));
        }
        if !out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            out.push(tag.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(AppError::bad_input(
            field,
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    Ok(out)
}

pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;
pub const MAX_CUSTOM_FIELD_KEY_CHARS: usize = 64;

/// Custom fields: a JSON object of at most 16 KB whose keys are short identifiers.
pub fn custom_fields(field: &str, value: &serde_json::Value) -> AppResult<serde_json::Value> {
    let Some(object) = value.as_object() else {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be a JSON object"),
        ));
    };
    for key in object.keys() {
        let valid = !key.is_empty()
            && key.chars().count() <= MAX_CUSTOM_FIELD_KEY_CHARS
            && key
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(AppError::bad_input(
                field,
                format!("custom field key {key:?} must be 1-64 letters, digits, '_' or '-'"),
            ));
        }
    }
    if value.to_string().len() > MAX_CUSTOM_FIELDS_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"),
        ));
    }
    Ok(value.clone())
}

/// A whole-number percentage.
pub fn percentage(field: &str, value: i32) -> AppResult<i16> {
    if !(0..=100).contains(&value) {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be between 0 and 100"),
        ));
    }
    Ok(value as i16)
}

/// A money amount or count that cannot be negative.
pub fn non_negative_decimal(
    field: &str,
    value: &bigdecimal::BigDecimal,
) -> AppResult<bigdecimal::BigDecimal> {
    if value < &bigdecimal::BigDecimal::from(0) {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not be negative"),
        ));
    }
    let too_large = value >= &bigdecimal::BigDecimal::from(10_000_000_000_000_000i64);
    if too_large || value.fractional_digit_count() > 2 {
        return Err(AppError::bad_input(
            field,
            format!("{field} must have at most 16 digits before and 2 after the decimal point"),
        ));
    }
    Ok(value.clone())
}

pub fn non_negative_int(field: &str, value: i32) -> AppResult<i32> {
    if value < 0 {
        return Err(AppError::bad_input(
            field,
            format!("{field} must not be negative"),
        ));
    }
    Ok(value)
}

/// A yes/no request parameter (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, any case).
pub fn flag(field: &str, raw: &str) -> AppResult<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(AppError::bad_input(
            field,
            format!("{field} must be true or false"),
        )),
    }
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
