//! Parameterised SQL built at run time, for the queries whose shape depends on the caller's
//! filter, search and ordering. Identifiers come only from `&'static str` whitelists in the
//! entity definitions; every value a client sent is a bind parameter, never text in the SQL.

use std::fmt::Write;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bool, Date, Numeric, Text, Timestamptz};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
    Ints(Vec<i64>),
    Decimal(BigDecimal),
    Decimals(Vec<BigDecimal>),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
    Bool(bool),
}

/// SQL text plus its bind values, in placeholder order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
        }
    }

    /// Appends trusted SQL text (never client input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a `$n` placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        let _ = write!(self.text, "${}", self.binds.len());
        self
    }

    /// A placeholder for a nullable bigint (`NULL` when absent).
    pub fn bind_optional_int(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => self.bind(Bind::Int(v)),
            None => self.push("NULL::bigint"),
        }
    }

    /// A placeholder for nullable text (`NULL` when absent).
    pub fn bind_optional_text(&mut self, value: Option<String>) -> &mut Self {
        match value {
            Some(v) => self.bind(Bind::Text(v)),
            None => self.push("NULL::text"),
        }
    }

    /// Appends another fragment, renumbering its placeholders.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        let offset = self.binds.len();
        self.text.push_str(&renumber(&other.text, offset));
        self.binds.extend(other.binds);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// A diesel query ready to `load` or `execute`.
    pub fn into_query(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        let mut query = diesel::sql_query(self.text).into_boxed::<Pg>();
        for bind in self.binds {
            query = match bind {
                Bind::Text(v) => query.bind::<Text, _>(v),
                Bind::Texts(v) => query.bind::<Array<Text>, _>(v),
                Bind::Int(v) => query.bind::<BigInt, _>(v),
                Bind::Ints(v) => query.bind::<Array<BigInt>, _>(v),
                Bind::Decimal(v) => query.bind::<Numeric, _>(v),
                Bind::Decimals(v) => query.bind::<Array<Numeric>, _>(v),
                Bind::Timestamp(v) => query.bind::<Timestamptz, _>(v),
                Bind::Date(v) => query.bind::<Date, _>(v),
                Bind::Bool(v) => query.bind::<Bool, _>(v),
            };
        }
        query
    }
}

/// Shifts every `$n` in `text` by `offset`.
fn renumber(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '$' {
            let mut digits = String::new();
            while let Some((_, d)) = chars.peek().copied().filter(|(_, d)| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            match digits.parse::<usize>() {
                Ok(n) => {
                    let _ = write!(out, "${}", n + offset);
                }
                Err(_) => out.push('$'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `%text%` for `LIKE`, with `%`, `_` and `\` taken literally.
pub fn contains_pattern(text: &str) -> String {
    crate::pagination::like_pattern(text)
}

/// `text%` for `LIKE`, with wildcards taken literally.
pub fn prefix_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragments_are_renumbered() {
        let mut outer = Sql::new("SELECT 1 WHERE a = ");
        outer.bind(Bind::Int(1));
        let mut inner = Sql::new(" AND (b = ");
        inner
            .bind(Bind::Int(2))
            .push(" OR c = ")
            .bind(Bind::Int(3))
            .push(")");
        outer.append(inner);
        assert_eq!(outer.text(), "SELECT 1 WHERE a = $1 AND (b = $2 OR c = $3)");
        assert_eq!(outer.binds().len(), 3);
    }

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(prefix_pattern("50%_"), "50\\%\\_%");
        assert_eq!(contains_pattern("a"), "%a%");
    }
}
