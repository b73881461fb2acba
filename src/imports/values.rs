//! One imported cell to one typed value, by the column's [`Type`]. Spreadsheet habits are
//! accepted (thousands separators, currency symbols, "Email Campaign" for `email_campaign`,
//! day/month dates), but nothing is guessed: a date that reads both ways is an error.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::columns::Type;
use super::export::FORMULA_STARTS;
use crate::validation::normalize_email;

/// A parsed cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Int(i32),
    Decimal(BigDecimal),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    /// One of the type's stored values.
    Enum(&'static str),
    Tags(Vec<String>),
    /// A normalised email (also a user reference, resolved by the caller).
    Email(String),
    /// A record ID.
    Id(i64),
    /// A custom field's JSON value.
    Json(serde_json::Value),
}

/// The cell as an import reads it: trimmed, and without the apostrophe an export puts before a
/// cell a spreadsheet would run as a formula (so an export imports back unchanged).
pub fn clean(raw: &str) -> &str {
    let cell = raw.trim();
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest.trim(),
        _ => cell,
    }
}

/// Parses a non-empty, cleaned cell.
pub fn parse(ty: Type, cell: &str) -> Result<Value, String> {
    match ty {
        Type::Text => Ok(Value::Text(cell.to_string())),
        Type::Email | Type::User => normalize_email("email", cell)
            .map(Value::Email)
            .map_err(|_| format!("{cell:?} is not a valid email address")),
        Type::Integer => whole(cell).map(Value::Int),
        Type::Percent => {
            let n = whole(cell.strip_suffix('%').unwrap_or(cell).trim())?;
            if (0..=100).contains(&n) {
                Ok(Value::Int(n))
            } else {
                Err(format!("{cell:?} is not a percentage between 0 and 100"))
            }
        }
        Type::Decimal => number(cell).map(Value::Decimal),
        Type::Timestamp => timestamp(cell).map(Value::Timestamp),
        Type::Date => date(cell).map(Value::Date),
        Type::Enum(values) => enum_value(values, cell).map(Value::Enum),
        Type::Tags => Ok(Value::Tags(
            cell.split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
        )),
        Type::Reference | Type::Id => cell
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Value::Id)
            .ok_or_else(|| format!("{cell:?} is not a record ID")),
    }
}

/// A custom field's value: a number when the cell is one as written (no leading zeros, so
/// postcodes and phone numbers stay text), `true`/`false`, or the text.
pub fn custom_value(cell: &str) -> serde_json::Value {
    let canonical_number = {
        let digits = cell.strip_prefix('-').unwrap_or(cell);
        let int_part = digits.split('.').next().unwrap_or("");
        !int_part.is_empty()
            && (int_part == "0" || !int_part.starts_with('0'))
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.matches('.').count() <= 1
            && !digits.ends_with('.')
    };
    if canonical_number {
        if let Ok(number) = serde_json::from_str::<serde_json::Number>(cell) {
            return serde_json::Value::Number(number);
        }
    }
    match cell {
        "true" | "TRUE" | "True" => serde_json::Value::Bool(true),
        "false" | "FALSE" | "False" => serde_json::Value::Bool(false),
        _ => serde_json::Value::String(cell.to_string()),
    }
}

/// Matches an enum cell by stored value or label, ignoring case, spaces and dashes
/// ("Email Campaign", "email-campaign" and "EMAIL_CAMPAIGN" are `email_campaign`).
fn enum_value(values: &'static [&'static str], cell: &str) -> Result<&'static str, String> {
    let wanted: String = cell
        .chars()
        .map(|c| match c {
            ' ' | '-' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    values
        .iter()
        .find(|v| **v == wanted)
        .copied()
        .ok_or_else(|| format!("{cell:?} is not one of {}", values.join(", ")))
}

/// A number as spreadsheets write it: `$1,234.50`, `1.234,50 €`, `1 234`, `USD 900`. When
/// both `,` and `.` appear, the last one is the decimal mark; a lone `,` followed by exactly
/// three digits groups thousands, otherwise it is a decimal comma.
pub fn number(cell: &str) -> Result<BigDecimal, String> {
    let bad = || format!("{cell:?} is not a number");
    let mut text: String = cell
        .chars()
        .filter(|c| !matches!(c, '$' | '€' | '£' | '¥' | '₹' | ' ' | '\u{a0}' | '\'' | '_'))
        .collect();
    // A currency code before or after the amount.
    for code in ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "INR"] {
        text = text
            .trim_start_matches(code)
            .trim_end_matches(code)
            .to_string();
    }
    let (commas, dots) = (text.matches(',').count(), text.matches('.').count());
    let normalised = match (commas, dots) {
        (0, 0) | (0, 1) => text,
        (0, _) => thousands(&text, '.').ok_or_else(bad)?,
        (_, 0) => {
            let after = text.rsplit(',').next().unwrap_or("");
            if commas == 1 && after.len() != 3 {
                text.replace(',', ".")
            } else {
                thousands(&text, ',').ok_or_else(bad)?
            }
        }
        _ => {
            let (last_comma, last_dot) =
                (text.rfind(',').unwrap_or(0), text.rfind('.').unwrap_or(0));
            let (group, decimal) = if last_dot > last_comma {
                (',', '.')
            } else {
                ('.', ',')
            };
            if text.matches(decimal).count() > 1 {
                return Err(bad());
            }
            let (int, frac) = text.rsplit_once(decimal).ok_or_else(bad)?;
            format!("{}.{frac}", thousands(int, group).ok_or_else(bad)?)
        }
    };
    if normalised.is_empty()
        || !normalised
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(bad());
    }
    BigDecimal::from_str(&normalised).map_err(|_| bad())
}

/// `1,234,567` without its group separators, if every group after the first has three digits.
fn thousands(text: &str, separator: char) -> Option<String> {
    let mut groups = text.split(separator);
    let first = groups.next()?;
    let mut out = first.to_string();
    for group in groups {
        if group.len() != 3 {
            return None;
        }
        out.push_str(group);
    }
    Some(out)
}

fn whole(cell: &str) -> Result<i32, String> {
    let n = number(cell)?;
    if !n.is_integer() {
        return Err(format!("{cell:?} is not a whole number"));
    }
    n.to_string()
        .parse::<i32>()
        .map_err(|_| format!("{cell:?} is too large"))
}

/// A day: `2026-11-24`, `2026/11/24`, `24.11.2026`, `24 Nov 2026`, `Nov 24, 2026`, or
/// `a/b/yyyy` (also with `-`) when only one reading is a date: `24/11/2026` is day first,
/// `11/24/2026` month first, and `03/04/2026` is refused.
pub fn date(cell: &str) -> Result<NaiveDate, String> {
    // chrono's %Y takes any number of digits: year-first forms need four of them.
    let year_first = cell.len() > 4
        && cell.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && matches!(cell.as_bytes()[4], b'-' | b'/');
    let formats: &[&str] = if year_first {
        &["%Y-%m-%d", "%Y/%m/%d"]
    } else {
        &[
            "%d.%m.%Y",
            "%d %b %Y",
            "%d %B %Y",
            "%b %d, %Y",
            "%B %d, %Y",
            "%b %d %Y",
        ]
    };
    for format in formats {
        if let Ok(day) = NaiveDate::parse_from_str(cell, format) {
            return Ok(day);
        }
    }
    if year_first {
        return Err(format!("{cell:?} is not a date; use YYYY-MM-DD"));
    }
    let parts: Vec<&str> = cell.split(['/', '-']).collect();
    let bad = || format!("{cell:?} is not a date; use YYYY-MM-DD");
    let [a, b, year] = parts[..] else {
        return Err(bad());
    };
    let (Ok(a), Ok(b), Ok(year)) = (a.parse::<u32>(), b.parse::<u32>(), year.parse::<i32>()) else {
        return Err(bad());
    };
    if parts[2].len() != 4 {
        return Err(format!("{cell:?} has a two-digit year; use YYYY-MM-DD"));
    }
    let (day, month) = match (a <= 12, b <= 12) {
        (true, true) if a != b => {
            return Err(format!(
                "{cell:?} is ambiguous: it could be day/month or month/day; use YYYY-MM-DD"
            ))
        }
        (true, true) | (false, true) => (a, b),
        (true, false) => (b, a),
        (false, false) => return Err(bad()),
    };
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(bad)
}

/// A moment: RFC 3339 (`2026-11-24T09:30:00Z`, with an offset or fraction), or a date as
/// [`date`] reads it with an optional `HH:MM[:SS]` time, taken as UTC; a date alone is midnight
/// UTC.
pub fn timestamp(cell: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(moment) = DateTime::parse_from_rfc3339(cell) {
        return Ok(moment.with_timezone(&Utc));
    }
    // PostgreSQL's own form, as exports write it: `2026-11-24 09:30:00.5+00`.
    if let Ok(moment) = DateTime::parse_from_str(cell, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Ok(moment.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(moment) = NaiveDateTime::parse_from_str(cell, format) {
            return Ok(moment.and_utc());
        }
    }
    let (day_part, time_part) = match cell.split_once(['T', ' ']) {
        // "Nov 24, 2026" has spaces inside the date itself.
        Some((d, t)) if t.contains(':') => (d, Some(t.trim())),
        _ => (cell, None),
    };
    let day = date(day_part)?;
    let time = match time_part {
        None => NaiveTime::MIN,
        Some(t) => NaiveTime::parse_from_str(t, "%H:%M:%S")
            .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M"))
            .map_err(|_| format!("{cell:?} has a time that is not HH:MM or HH:MM:SS"))?,
    };
    Ok(day.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> BigDecimal {
        BigDecimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_accept_spreadsheet_forms() {
        assert_eq!(number("$1,234.50").unwrap(), dec("1234.50"));
        assert_eq!(number("1.234,50 €").unwrap(), dec("1234.50"));
        assert_eq!(number("1 234 567").unwrap(), dec("1234567"));
        assert_eq!(number("USD 900").unwrap(), dec("900"));
        assert_eq!(number("12,5").unwrap(), dec("12.5"));
        assert_eq!(number("1,234").unwrap(), dec("1234"));
        assert_eq!(number("1.234.567").unwrap(), dec("1234567"));
        assert!(number("12abc").is_err());
        assert!(number("1,23,4").is_err());
        assert_eq!(whole("2,500").unwrap(), 2500);
        assert!(whole("2.5").is_err());
    }

    #[test]
    fn dates_are_never_guessed() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(date("2026-11-24").unwrap(), d(2026, 11, 24));
        assert_eq!(date("24/11/2026").unwrap(), d(2026, 11, 24));
        assert_eq!(date("11/24/2026").unwrap(), d(2026, 11, 24));
        assert_eq!(date("05/05/2026").unwrap(), d(2026, 5, 5));
        assert_eq!(date("24.11.2026").unwrap(), d(2026, 11, 24));
        assert_eq!(date("Nov 24, 2026").unwrap(), d(2026, 11, 24));
        assert_eq!(date("24 November 2026").unwrap(), d(2026, 11, 24));
        assert!(date("03/04/2026").unwrap_err().contains("ambiguous"));
        assert!(date("24/11/26").is_err());
        assert!(date("31/02/2026").is_err());
        assert_eq!(
            timestamp("2026-11-24T09:30:00.5+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-24T08:30:00.500+00:00"
        );
        assert_eq!(
            timestamp("24/11/2026 14:05").unwrap().to_rfc3339(),
            "2026-11-24T14:05:00+00:00"
        );
        assert!(timestamp("03/04/2026 10:00").is_err());
        // PostgreSQL's form, which exports write.
        assert_eq!(
            timestamp("2026-11-24 09:30:00.5+00").unwrap().to_rfc3339(),
            "2026-11-24T09:30:00.500+00:00"
        );
        assert_eq!(
            timestamp("2026-11-24 09:30:00+05:30").unwrap().to_rfc3339(),
            "2026-11-24T04:00:00+00:00"
        );
    }

    #[test]
    fn enums_match_labels_and_cells_are_cleaned() {
        let values = &["email_campaign", "cold_call", "website"];
        assert_eq!(
            enum_value(values, "Email Campaign").unwrap(),
            "email_campaign"
        );
        assert_eq!(enum_value(values, "COLD-CALL").unwrap(), "cold_call");
        assert!(enum_value(values, "fax").unwrap_err().contains("website"));
        assert_eq!(clean("  '=SUM(A1)  "), "=SUM(A1)");
        assert_eq!(clean("'quoted"), "'quoted");
        assert_eq!(custom_value("42"), serde_json::json!(42));
        assert_eq!(custom_value("02134"), serde_json::json!("02134"));
        assert_eq!(custom_value("true"), serde_json::json!(true));
        assert_eq!(custom_value("3.5"), serde_json::json!(3.5));
    }
}
