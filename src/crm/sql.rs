//! Parameterised SQL built at run time, for the queries whose shape depends on the caller's
//! filter, search and ordering. Identifiers come only from `&'static str` whitelists in the
//! entity definitions; every value a client sent is a bind parameter, never text in the SQL.

use std::fmt::Write;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Date, Numeric, Text, Timestamptz, Untyped};
use diesel::QueryResult;

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
    Timestamps(Vec<DateTime<Utc>>),
    Date(NaiveDate),
    Dates(Vec<NaiveDate>),
    Bool(bool),
}

/// SQL text plus its bind values, in placeholder order.
#[derive(Debug, Clone)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
    /// Whether the statement may stay prepared on its connection (see [`Statement`]).
    cacheable: bool,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            binds: Vec::new(),
            cacheable: true,
        }
    }

    /// Marks the statement as shaped by the client (a filter tree, a long sort): it is then
    /// prepared for one use only, so clients cannot fill the per-connection statement cache
    /// with endless variants.
    pub fn uncacheable(&mut self) -> &mut Self {
        self.cacheable = false;
        self
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
        self.cacheable &= other.cacheable;
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
    pub fn into_query(self) -> Statement {
        Statement(self)
    }
}

/// A built statement for diesel. Unlike `diesel::sql_query`, which prepares every statement
/// anew (a Parse/Describe round trip and a fresh plan each time), a cacheable statement stays
/// prepared on its connection, keyed by its text: the list, lookup and loader queries have a
/// bounded set of shapes and run thousands of times.
pub struct Statement(Sql);

impl QueryId for Statement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Statement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.0.cacheable {
            out.unsafe_to_cache_prepared();
        }
        // The text holds `$n` placeholders in bind order; diesel numbers the parameters it
        // is given in the same order, so each placeholder is replaced by its bind.
        for piece in pieces(&self.0.text) {
            match piece {
                Piece::Text(text) => out.push_sql(text),
                Piece::Placeholder(n) => push_bind(&mut out, &self.0.binds[n])?,
                Piece::OutOfOrder(message) => {
                    return Err(diesel::result::Error::QueryBuilderError(message.into()))
                }
            }
        }
        Ok(())
    }
}

/// A piece of a statement's text: SQL, or the placeholder of the bind at an index.
enum Piece<'a> {
    Text(&'a str),
    Placeholder(usize),
    OutOfOrder(String),
}

/// Splits `text` at its `$n` placeholders, which must come in order ($1, $2, ...). A `$`
/// without digits (`'^x$'`) is text.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut pieces = Vec::new();
    let (mut start, mut search, mut next) = (0, 0, 1);
    while let Some(found) = text[search..].find('$') {
        let at = search + found;
        let digits = text[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        search = at + 1 + digits;
        if digits == 0 {
            continue;
        }
        let number: usize = text[at + 1..search].parse().unwrap_or(0);
        if number != next {
            pieces.push(Piece::OutOfOrder(format!(
                "placeholder ${number} out of order (expected ${next})"
            )));
            return pieces;
        }
        pieces.push(Piece::Text(&text[start..at]));
        pieces.push(Piece::Placeholder(number - 1));
        next += 1;
        start = search;
    }
    pieces.push(Piece::Text(&text[start..]));
    pieces
}

impl Sql {
    /// The statement with every bind written into it as a typed literal, for the one
    /// statement that takes no parameters: `COPY (SELECT ...) TO STDOUT`. Text is quoted by
    /// doubling its quotes, which is exact only with `standard_conforming_strings` on; the
    /// connection that runs it must set that (see `db::copy`). Text holding a NUL character
    /// cannot be a PostgreSQL value and is refused.
    pub fn inline(&self) -> Result<String, String> {
        let mut out = String::with_capacity(self.text.len() + 16 * self.binds.len());
        for piece in pieces(&self.text) {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Placeholder(n) => literal(&self.binds[n], &mut out)?,
                Piece::OutOfOrder(message) => return Err(message),
            }
        }
        Ok(out)
    }
}

/// `value` as a parenthesised, typed SQL literal.
fn literal(value: &Bind, out: &mut String) -> Result<(), String> {
    fn quoted(text: &str) -> Result<String, String> {
        if text.contains('\0') {
            return Err("text with a NUL character".into());
        }
        Ok(format!("'{}'", text.replace('\'', "''")))
    }
    fn array<T>(
        items: &[T],
        each: impl Fn(&T) -> Result<String, String>,
    ) -> Result<String, String> {
        Ok(items
            .iter()
            .map(each)
            .collect::<Result<Vec<_>, _>>()?
            .join(", "))
    }
    fn rfc3339(time: &DateTime<Utc>) -> String {
        time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }
    let text = match value {
        Bind::Text(v) => format!("{}::text", quoted(v)?),
        Bind::Texts(v) => format!("ARRAY[{}]::text[]", array(v, |t| quoted(t))?),
        Bind::Int(v) => format!("'{v}'::bigint"),
        Bind::Ints(v) => format!("ARRAY[{}]::bigint[]", array(v, |i| Ok(format!("'{i}'")))?),
        Bind::Decimal(v) => format!("'{v}'::numeric"),
        Bind::Decimals(v) => format!("ARRAY[{}]::numeric[]", array(v, |d| Ok(format!("'{d}'")))?),
        Bind::Timestamp(v) => format!("'{}'::timestamptz", rfc3339(v)),
        Bind::Timestamps(v) => format!(
            "ARRAY[{}]::timestamptz[]",
            array(v, |t| Ok(format!("'{}'", rfc3339(t))))?
        ),
        Bind::Date(v) => format!("'{v}'::date"),
        Bind::Dates(v) => format!("ARRAY[{}]::date[]", array(v, |d| Ok(format!("'{d}'")))?),
        Bind::Bool(v) => v.to_string(),
    };
    out.push('(');
    out.push_str(&text);
    out.push(')');
    Ok(())
}

fn push_bind<'b>(out: &mut AstPass<'_, 'b, Pg>, bind: &'b Bind) -> QueryResult<()> {
    match bind {
        Bind::Text(v) => out.push_bind_param::<Text, _>(v),
        Bind::Texts(v) => out.push_bind_param::<Array<Text>, _>(v),
        Bind::Int(v) => out.push_bind_param::<BigInt, _>(v),
        Bind::Ints(v) => out.push_bind_param::<Array<BigInt>, _>(v),
        Bind::Decimal(v) => out.push_bind_param::<Numeric, _>(v),
        Bind::Decimals(v) => out.push_bind_param::<Array<Numeric>, _>(v),
        Bind::Timestamp(v) => out.push_bind_param::<Timestamptz, _>(v),
        Bind::Timestamps(v) => out.push_bind_param::<Array<Timestamptz>, _>(v),
        Bind::Date(v) => out.push_bind_param::<Date, _>(v),
        Bind::Dates(v) => out.push_bind_param::<Array<Date>, _>(v),
        Bind::Bool(v) => out.push_bind_param::<Bool, _>(v),
    }
}

/// Shifts every `$n` in `text` by `offset`. A fragment built with `bind` has its placeholders
/// in order; one that has not is kept as it is, and the statement's walk reports it.
fn renumber(text: &str, offset: usize) -> String {
    if offset == 0 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for piece in pieces(text) {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Placeholder(n) => {
                let _ = write!(out, "${}", n + 1 + offset);
            }
            Piece::OutOfOrder(_) => return text.to_string(),
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

    /// The SQL diesel sends, and whether it may keep the statement prepared.
    fn rendered(sql: Sql) -> (String, bool) {
        let query = sql.into_query();
        let text = diesel::debug_query::<Pg, _>(&query).to_string();
        let text = text.split(" -- binds").next().unwrap().to_string();
        let cacheable = QueryFragment::<Pg>::is_safe_to_cache_prepared(&query, &Pg).unwrap();
        (text, cacheable)
    }

    #[test]
    fn statements_bind_in_order_and_cache_unless_client_shaped() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Bind::Int(1))
            .push(" AND b ~ '^x$' AND c = ANY(")
            .bind(Bind::Ints(vec![1, 2]))
            .push(")");
        assert_eq!(
            rendered(sql.clone()),
            (
                "SELECT 1 WHERE a = $1 AND b ~ '^x$' AND c = ANY($2)".to_string(),
                true
            )
        );
        sql.uncacheable();
        assert!(!rendered(sql.clone()).1);
        let mut outer = Sql::new("SELECT 2 WHERE ");
        outer.append(sql);
        assert!(!rendered(outer).1, "appending keeps the client's shape");
    }

    #[test]
    fn inlined_statements_quote_every_value_as_a_typed_literal() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Bind::Text("O'Brien; DROP TABLE leads --".into()))
            .push(" AND b ~ '^x$' AND c = ANY(")
            .bind(Bind::Texts(vec!["x".into(), "it's".into()]))
            .push(") AND d > ")
            .bind(Bind::Int(-5))
            .push(" AND e = ANY(")
            .bind(Bind::Ints(vec![]))
            .push(") AND f < ")
            .bind(Bind::Timestamp(
                DateTime::parse_from_rfc3339("2026-11-24T09:30:00.5Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ));
        assert_eq!(
            sql.inline().unwrap(),
            "SELECT 1 WHERE a = ('O''Brien; DROP TABLE leads --'::text) AND b ~ '^x$' \
             AND c = ANY((ARRAY['x', 'it''s']::text[])) AND d > ('-5'::bigint) \
             AND e = ANY((ARRAY[]::bigint[])) AND f < ('2026-11-24T09:30:00.500Z'::timestamptz)"
        );
        let mut nul = Sql::new("SELECT ");
        nul.bind(Bind::Text("a\0b".into()));
        assert!(nul.inline().is_err());
    }

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(prefix_pattern("50%_"), "50\\%\\_%");
        assert_eq!(contains_pattern("a"), "%a%");
    }
}
