//! CSV export: the records of one kind the caller may see, filtered like the GraphQL lists.
//! PostgreSQL writes the CSV itself (`COPY (SELECT ...) TO STDOUT`), streamed to the client
//! as it comes (constant memory whatever the row count): turning rows into CSV in Rust ran at
//! a third of COPY's speed. Cells that a spreadsheet would run as a formula are neutralised
//! in the SELECT.

use std::str::FromStr;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::columns::{Column, Resource, Type};
use crate::auth::Viewer;
use crate::crm::companies::Company;
use crate::crm::contacts::Contact;
use crate::crm::leads::Lead;
use crate::crm::opportunities::Opportunity;
use crate::crm::query::{self, Deleted, Listable};
use crate::crm::sql::{Bind, Sql};
use crate::crm::tasks::Task;
use crate::error::{AppError, AppResult};

/// Most custom-field columns an export adds.
const MAX_CUSTOM_COLUMNS: i64 = 200;

/// An export ready to run: its header and the statement pieces that read its pages.
#[derive(Debug, Clone)]
pub struct Export {
    pub resource: Resource,
    pub header: Vec<String>,
    /// The cells, comma-separated, with their binds (custom-field keys), named `c0`, `c1`...
    cells: Sql,
    /// The names of the cells COPY must always quote (free text).
    quoted: Vec<String>,
    /// `LEFT JOIN users ...` for the user columns (a join per page beats a lookup per row).
    joins: String,
    /// Scope, filters and search.
    conditions: Sql,
}

impl Export {
    /// Checks the query parameters and builds the export. `params` are the URL's query pairs:
    /// `fields=a,b,c`, `search=...`, `assigned_to_me=true`, `owned_by_me=true`, `tags=a,b`,
    /// `<column>=v1,v2`, `<column>_after` / `_before` (times and dates), `<column>_min` /
    /// `_max` (numbers). Anything else is a BAD_USER_INPUT naming the parameter.
    pub async fn prepare(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        resource: Resource,
        params: &[(String, String)],
    ) -> AppResult<Export> {
        let table = resource.table();
        let t = table.name;
        let mut conditions = query::scope(viewer, &table, Deleted::Hide);
        let mut fields: Option<Vec<String>> = None;
        for (key, value) in params {
            let value = value.trim();
            if value.contains('\0') {
                return Err(AppError::bad_input(key, "must not contain NUL characters"));
            }
            match key.as_str() {
                "fields" => {
                    fields = Some(
                        value
                            .split(',')
                            .map(|f| f.trim().to_string())
                            .filter(|f| !f.is_empty())
                            .collect(),
                    )
                }
                "search" if !value.is_empty() => {
                    conditions.push(" AND ");
                    query::search(viewer, &table, value, &mut conditions);
                }
                "search" => {}
                // Empty (`assigned_to_me=`) is no filter, like GraphQL's null.
                "assigned_to_me" | "owned_by_me" if value.is_empty() => {}
                "assigned_to_me" | "owned_by_me" => {
                    let yes = crate::validation::flag(key, value)?;
                    let owner = key == "owned_by_me";
                    conditions.push(" AND ");
                    match resource {
                        Resource::Leads => mine::<Lead>(viewer, key, owner, yes, &mut conditions),
                        Resource::Contacts => {
                            mine::<Contact>(viewer, key, owner, yes, &mut conditions)
                        }
                        Resource::Companies => {
                            mine::<Company>(viewer, key, owner, yes, &mut conditions)
                        }
                        Resource::Opportunities => {
                            mine::<Opportunity>(viewer, key, owner, yes, &mut conditions)
                        }
                        Resource::Tasks => mine::<Task>(viewer, key, owner, yes, &mut conditions),
                    }?;
                }
                "tags" => {
                    conditions
                        .push(&format!(" AND {t}.tags @> "))
                        .bind(Bind::Texts(list(value)))
                        .push("::text[]");
                }
                other => column_filter(viewer, resource, other, value, &mut conditions)?,
            }
        }

        let custom_keys = match &fields {
            Some(_) => Vec::new(),
            None => custom_keys(conn, resource, &conditions).await?,
        };
        let selected: Vec<Selected> = match fields {
            Some(names) => names
                .iter()
                .map(|name| select(resource, name))
                .collect::<AppResult<_>>()?,
            None => resource
                .columns()
                .iter()
                .map(Selected::Column)
                .chain(custom_keys.into_iter().map(Selected::Custom))
                .collect(),
        };
        if selected.is_empty() {
            return Err(AppError::bad_input("fields", "name at least one field"));
        }
        let mut cells = Sql::new("");
        let mut quoted = Vec::new();
        for (i, column) in selected.iter().enumerate() {
            if i > 0 {
                cells.push(", ");
            }
            column.cell(t, &mut cells);
            cells.push(&format!(" AS c{i}"));
            // Free text is always quoted: COPY quotes only cells holding a comma, a quote or
            // a line break, and a spreadsheet set to `;` as its separator (most of Europe)
            // would split an unquoted `a;b`.
            if column.may_start_a_formula() {
                quoted.push(format!("c{i}"));
            }
        }
        let joins = selected
            .iter()
            .filter_map(|s| match s {
                Selected::Column(c) if c.ty == Type::User => Some(format!(
                    " LEFT JOIN users AS {alias} ON {alias}.id = {t}.{stored}",
                    alias = user_alias(c),
                    stored = c.stored
                )),
                _ => None,
            })
            // A column picked twice joins once.
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        Ok(Export {
            resource,
            header: selected.iter().map(Selected::header).collect(),
            cells,
            quoted,
            joins,
            conditions,
        })
    }

    /// The header line.
    pub fn header_csv(&self) -> Vec<u8> {
        write_csv(std::iter::once(
            self.header.iter().map(|h| Some(h.as_str())).collect(),
        ))
    }

    /// The `COPY (SELECT ...) TO STDOUT` that writes the rows (without the header). COPY
    /// takes no parameters, so the binds are written in as literals. Rows come in storage
    /// order (about creation order): ordering by ID walks the primary key and costs a third
    /// of the export's speed, and a spreadsheet sorts anyway.
    pub fn copy_statement(&self) -> AppResult<String> {
        let t = self.resource.table().name;
        let mut select = Sql::new("SELECT ");
        select
            .append(self.cells.clone())
            .push(&format!(" FROM {t}{} WHERE ", self.joins))
            .append(self.conditions.clone());
        let select = select.inline().map_err(|e| {
            AppError::internal(anyhow::anyhow!("export statement not inlined: {e}"))
        })?;
        if self.quoted.is_empty() {
            return Ok(format!("COPY ({select}) TO STDOUT (FORMAT csv)"));
        }
        Ok(format!(
            "COPY ({select}) TO STDOUT (FORMAT csv, FORCE_QUOTE ({}))",
            self.quoted.join(", ")
        ))
    }

    /// `leads_export_20261124_093000.csv`.
    pub fn filename(&self, now: DateTime<Utc>) -> String {
        format!(
            "{}_export_{}.csv",
            self.resource.name(),
            now.format("%Y%m%d_%H%M%S")
        )
    }
}

/// A template: every importable column and one example row.
pub fn template(resource: Resource) -> Vec<u8> {
    let columns: Vec<&Column> = resource.columns().iter().filter(|c| c.importable).collect();
    write_csv(
        [
            columns.iter().map(|c| Some(c.name)).collect::<Vec<_>>(),
            columns.iter().map(|c| Some(c.example)).collect(),
        ]
        .into_iter(),
    )
}

/// A column of the export.
enum Selected {
    Column(&'static Column),
    Custom(String),
}

impl Selected {
    fn header(&self) -> String {
        match self {
            Selected::Column(c) => c.name.to_string(),
            Selected::Custom(key) => format!("custom.{key}"),
        }
    }

    /// The cell as text, neutralised when it could be one.
    fn cell(&self, t: &str, out: &mut Sql) {
        if !self.may_start_a_formula() {
            return self.expression(t, out);
        }
        // An apostrophe first when the text starts with a formula character, as `neutralise`
        // does.
        // Parenthesised: `'x' || a ->> 'k'` would read as `('x' || a) ->> 'k'`.
        let mut text = Sql::new("(");
        self.expression(t, &mut text);
        text.push(")");
        out.push("CASE WHEN ascii")
            .append(text.clone())
            .push(&format!(" IN ({}) THEN '''' || ", formula_codes()))
            .append(text.clone())
            .push(" ELSE ")
            .append(text)
            .push(" END");
    }

    /// Whether a value of this column could start with a formula character. IDs, dates,
    /// times and enumeration values cannot, and skip the check.
    fn may_start_a_formula(&self) -> bool {
        match self {
            Selected::Custom(_) => true,
            Selected::Column(column) => !matches!(
                column.ty,
                Type::Enum(_) | Type::Id | Type::Reference | Type::Date | Type::Timestamp
            ),
        }
    }

    /// The cell as text, in the format an import reads back.
    fn expression(&self, t: &str, out: &mut Sql) {
        let Selected::Column(column) = self else {
            if let Selected::Custom(key) = self {
                out.push(&format!("{t}.custom_fields ->> "))
                    .bind(Bind::Text(key.clone()));
            }
            return;
        };
        let c = format!("{t}.{}", column.stored);
        let expression = match column.ty {
            Type::Text | Type::Email | Type::Enum(_) => c,
            Type::Integer
            | Type::Decimal
            | Type::Percent
            | Type::Id
            | Type::Reference
            | Type::Date => {
                format!("{c}::text")
            }
            // As PostgreSQL writes it on the COPY connection (UTC, ISO):
            // `2026-11-24 09:30:00.5+00`, lossless, and a third of the cost of reshaping it
            // into `2026-11-24T09:30:00.5Z` in SQL. Imports read both.
            Type::Timestamp => c,
            Type::Tags => format!("array_to_string({c}, ';')"),
            Type::User => format!("{}.email", user_alias(column)),
        };
        out.push(&expression);
    }
}

/// The join alias of a user column (`owner_id` → `users_owner_id`).
fn user_alias(column: &Column) -> String {
    format!("users_{}", column.stored)
}

fn select(resource: Resource, name: &str) -> AppResult<Selected> {
    if let Some(key) = name.strip_prefix("custom.") {
        if key.is_empty() || key.len() > 100 {
            return Err(AppError::bad_input("fields", format!("bad field {name:?}")));
        }
        return Ok(Selected::Custom(key.to_string()));
    }
    resource.column(name).map(Selected::Column).ok_or_else(|| {
        let known: Vec<&str> = resource.columns().iter().map(|c| c.name).collect();
        AppError::bad_input(
            "fields",
            format!(
                "unknown field {name:?}; fields are {} and custom.<key>",
                known.join(", ")
            ),
        )
    })
}

/// The custom-field keys of the rows the export covers, sorted.
async fn custom_keys(
    conn: &mut AsyncPgConnection,
    resource: Resource,
    conditions: &Sql,
) -> AppResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        key: String,
    }
    let t = resource.table().name;
    let mut sql = Sql::new(&format!(
        "SELECT DISTINCT k AS key FROM {t}, jsonb_object_keys({t}.custom_fields) AS k WHERE "
    ));
    sql.append(conditions.clone())
        .push(" ORDER BY key LIMIT ")
        .bind(Bind::Int(MAX_CUSTOM_COLUMNS));
    sql.uncacheable();
    let keys: Vec<Key> = sql.into_query().load(conn).await?;
    Ok(keys.into_iter().map(|k| k.key).collect())
}

/// `<column>=a,b`, `<column>_after`, `_before`, `_min`, `_max`.
fn column_filter(
    viewer: &Viewer,
    resource: Resource,
    key: &str,
    value: &str,
    out: &mut Sql,
) -> AppResult<()> {
    let suffixes = [
        ("_after", ">"),
        ("_before", "<"),
        ("_min", ">="),
        ("_max", "<="),
    ];
    // `created_after` is `created_at` after: a time column's `_at` may be left out.
    let ranged = |name: &str| {
        resource
            .column(name)
            .or_else(|| resource.column(&format!("{name}_at")))
    };
    let (column, op) = suffixes
        .iter()
        .find_map(|(suffix, op)| {
            key.strip_suffix(suffix)
                .and_then(ranged)
                .map(|column| (column, *op))
        })
        .or_else(|| resource.column(key).map(|column| (column, "=")))
        .ok_or_else(|| AppError::bad_input(key, format!("unknown filter {key:?}")))?;
    let t = resource.table().name;
    let c = format!("{t}.{}", column.stored);
    let wrong = |what: &str| AppError::bad_input(key, format!("{key} {what}"));
    match (column.ty, op) {
        (Type::Timestamp, ">" | "<") => {
            let at = parse_time(value).ok_or_else(|| {
                wrong("must be an ISO 8601 time or date (2026-11-24T09:30:00Z, 2026-11-24)")
            })?;
            out.push(&format!(" AND {c} {op} "))
                .bind(Bind::Timestamp(at));
        }
        (Type::Date, ">" | "<") => {
            let day = NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map_err(|_| wrong("must be a date (2026-11-24)"))?;
            out.push(&format!(" AND {c} {op} ")).bind(Bind::Date(day));
        }
        (Type::Integer | Type::Percent | Type::Id | Type::Reference, _) => {
            let numbers = list(value)
                .iter()
                .map(|v| v.parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| wrong("must be whole numbers"))?;
            compare(
                out,
                &c,
                op,
                numbers.into_iter().map(Bind::Int).collect(),
                key,
            )?;
        }
        (Type::Decimal, _) => {
            let numbers = list(value)
                .iter()
                .map(|v| BigDecimal::from_str(v))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| wrong("must be numbers"))?;
            compare(
                out,
                &c,
                op,
                numbers.into_iter().map(Bind::Decimal).collect(),
                key,
            )?;
        }
        (Type::Enum(allowed), "=") => {
            let values = list(value)
                .into_iter()
                .map(|v| {
                    let normal = v.to_lowercase().replace([' ', '-'], "_");
                    allowed
                        .contains(&normal.as_str())
                        .then_some(normal)
                        .ok_or_else(|| wrong(&format!("must be one of {}", allowed.join(", "))))
                })
                .collect::<AppResult<Vec<_>>>()?;
            out.push(&format!(" AND {c} = ANY("))
                .bind(Bind::Texts(values))
                .push(")");
        }
        (Type::Text | Type::Email, "=") => {
            let mut values = list(value);
            if column.ty == Type::Email {
                values.iter_mut().for_each(|v| *v = v.to_lowercase());
            }
            out.push(&format!(" AND {c} = ANY("))
                .bind(Bind::Texts(values))
                .push(")");
        }
        (Type::User, "=") => {
            out.push(&format!(
                " AND {c} IN (SELECT u.id FROM users u WHERE u.workspace_id = "
            ))
            .bind(Bind::Int(viewer.workspace_id.0))
            .push(" AND u.email = ANY(")
            .bind(Bind::Texts(
                list(value).into_iter().map(|v| v.to_lowercase()).collect(),
            ))
            .push("))");
        }
        // Tags are filtered by the `tags` parameter; ranges over them mean nothing.
        _ => return Err(wrong("cannot be filtered this way")),
    }
    Ok(())
}

/// `=` takes a list; the ranges one value.
fn compare(
    out: &mut Sql,
    column: &str,
    op: &str,
    mut values: Vec<Bind>,
    key: &str,
) -> AppResult<()> {
    if op == "=" {
        out.push(&format!(" AND {column} IN ("));
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(", ");
            }
            out.bind(value);
        }
        out.push(")");
        return Ok(());
    }
    if values.len() != 1 {
        return Err(AppError::bad_input(key, format!("{key} takes one value")));
    }
    out.push(&format!(" AND {column} {op} "))
        .bind(values.remove(0));
    Ok(())
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// `assigned_to_me=` / `owned_by_me=`, by the rule GraphQL's `assignedToMe` / `ownedByMe`
/// use ([`query::is_me`]): `false` means "not assigned to me", unassigned records included.
fn mine<R: Listable>(
    viewer: &Viewer,
    key: &str,
    owner: bool,
    yes: bool,
    out: &mut Sql,
) -> AppResult<()> {
    let field = if owner {
        Some(R::OWNER_FIELD)
    } else {
        R::ASSIGNEE_FIELD
    };
    let field =
        field.ok_or_else(|| AppError::bad_input(key, format!("a {} has no assignee", R::WHAT)))?;
    query::compile(R::TABLE.name, &query::is_me(field, viewer, yes), out);
    Ok(())
}

fn parse_time(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// A spreadsheet runs a cell that starts with one of these as a formula.
pub const FORMULA_STARTS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// [`FORMULA_STARTS`] as character codes for SQL's `ascii()`.
fn formula_codes() -> String {
    FORMULA_STARTS
        .iter()
        .map(|c| (*c as u32).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cell as written: a leading apostrophe keeps a spreadsheet from evaluating it (the
/// import strips it again).
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

fn write_csv<'a>(rows: impl Iterator<Item = Vec<Option<&'a str>>>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(row.iter().map(|c| neutralise(c.unwrap_or("")).into_owned()));
    }
    writer.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_plain_text_is_not() {
        assert_eq!(neutralise("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(neutralise("+1 555"), "'+1 555");
        assert_eq!(neutralise("-2"), "'-2");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "'\tx");
        assert_eq!(neutralise("Ada"), "Ada");
        assert_eq!(neutralise(""), "");
    }

    #[test]
    fn templates_have_importable_columns_and_one_example_row() {
        for resource in Resource::ALL {
            let text = String::from_utf8(template(resource)).unwrap();
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            let header = reader.headers().unwrap().clone();
            assert!(!header.iter().any(|h| h == "id" || h == "created_at"));
            let rows: Vec<_> = reader.records().map(|r| r.unwrap()).collect();
            assert_eq!(rows.len(), 1, "{}", resource.name());
            assert_eq!(rows[0].len(), header.len());
        }
    }
}
