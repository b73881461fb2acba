//! The list engine every CRM entity shares: who may see which rows (the one place that says
//! so), filter predicates, full-text-ish search, ordering with stable keyset pagination, and the
//! cursors that carry a position between pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use diesel::pg::Pg;
use diesel::{OptionalExtension, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::sql::{contains_pattern, prefix_pattern, Bind, Sql};
use crate::auth::{Role, Viewer};
use crate::error::{AppError, AppResult};
use crate::pagination::{Page, PageArgs};

/// A table the engine can list: its name and the columns that decide visibility.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub owner_column: &'static str,
    /// `None` when the entity has no assignee.
    pub assignee_column: Option<&'static str>,
    /// The column naming the company a row belongs to, whose name a search matches too
    /// (`None` when the entity has no company, or carries its name itself as leads do).
    pub company_column: Option<&'static str>,
}

/// The rows a list filter covers, before search and paging: its predicate, and whether
/// deleted rows count (`includeDeleted`). Lists and statistics read it the same way.
#[derive(Debug, Clone)]
pub struct Covered<F> {
    pub filter: Option<Predicate<F>>,
    pub deleted: Deleted,
}

/// Soft-deleted rows are hidden unless asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Deleted {
    #[default]
    Hide,
    Include,
}

/// Visibility, in one place: rows of the caller's workspace; members see only what they own or
/// are assigned; managers and admins see the whole workspace. Out-of-scope rows are simply
/// absent, so callers answer NOT_FOUND for them.
pub fn scope(viewer: &Viewer, table: &Table, deleted: Deleted) -> Sql {
    let mut sql = Sql::new(&format!("{}.workspace_id = ", table.name));
    sql.bind(Bind::Int(viewer.workspace_id.0));
    if deleted == Deleted::Hide {
        sql.push(&format!(" AND {}.deleted_at IS NULL", table.name));
    }
    if viewer.role == Role::Member {
        sql.push(&format!(" AND ({}.{} = ", table.name, table.owner_column));
        sql.bind(Bind::Int(viewer.user_id.0));
        if let Some(assignee) = table.assignee_column {
            sql.push(&format!(" OR {}.{} = ", table.name, assignee));
            sql.bind(Bind::Int(viewer.user_id.0));
        }
        sql.push(")");
    }
    sql
}

/// The same rule as [`scope`], asked the other way round: which of many users may see one
/// record (`$1`: the record's ID, `$2`: the candidates' IDs). Deleted records count, so the
/// people of a record can hear that it was deleted. For notifications and live feeds.
pub fn users_who_see(table: &Table) -> String {
    let assignee = table
        .assignee_column
        .map(|column| format!(" OR r.{column} = u.id"))
        .unwrap_or_default();
    format!(
        "SELECT u.id FROM users u JOIN {table} r ON r.workspace_id = u.workspace_id \
         WHERE r.id = $1 AND u.id = ANY($2) AND u.is_active \
           AND (u.role <> 'member' OR r.{owner} = u.id{assignee})",
        table = table.name,
        owner = table.owner_column,
    )
}

/// Who a record's people are and what it is called: the owner and assignee decide what a
/// member sees (the rule of [`scope`]), the label names it in notifications.
#[derive(Debug, QueryableByName)]
pub struct RecordPeople {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub owner_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub assigned_to_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub label: String,
}

impl RecordPeople {
    /// Whether a member (who sees only their own records) sees this one.
    pub fn member_sees(&self, user: i64) -> bool {
        self.owner_id == Some(user) || self.assigned_to_id == Some(user)
    }
}

/// How a record is named in notifications.
fn label_sql(entity: &str) -> &'static str {
    match entity {
        "lead" | "contact" => {
            "coalesce(nullif(btrim(concat_ws(' ', first_name, last_name)), ''), email, '#' || id)"
        }
        "task" => "title",
        _ => "name",
    }
}

/// The people of records of one kind (change-stream name), deleted ones included, by ID.
/// Unknown kinds have none.
pub async fn record_people(
    conn: &mut AsyncPgConnection,
    entity: &str,
    ids: &[i64],
) -> AppResult<std::collections::HashMap<i64, RecordPeople>> {
    use diesel::sql_types::{Array, BigInt};
    let Some(table) = table_of(entity) else {
        return Ok(Default::default());
    };
    let rows: Vec<RecordPeople> = diesel::sql_query(format!(
        "SELECT id, {owner} AS owner_id, {assignee} AS assigned_to_id, {label} AS label \
         FROM {name} WHERE id = ANY($1)",
        owner = table.owner_column,
        assignee = table.assignee_column.unwrap_or("NULL::bigint"),
        label = label_sql(entity),
        name = table.name,
    ))
    .bind::<Array<BigInt>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|p| (p.id, p)).collect())
}

/// NOT_FOUND unless the viewer may see the live record of kind `entity` (change-stream name).
pub async fn require_visible(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    entity: &str,
    record_id: i64,
) -> AppResult<()> {
    use diesel::sql_types::{Array, BigInt};
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        #[allow(dead_code)]
        id: i64,
    }
    let table = table_of(entity).ok_or(AppError::NotFound("record"))?;
    let seen: Option<Id> = diesel::sql_query(format!(
        "{} AND r.deleted_at IS NULL",
        users_who_see(&table)
    ))
    .bind::<BigInt, _>(record_id)
    .bind::<Array<BigInt>, _>(vec![viewer.user_id.0])
    .get_result(conn)
    .await
    .optional()?;
    seen.map(|_| ()).ok_or(AppError::NotFound("record"))
}

/// The list table of a kind of record by its change-stream name (`lead`, `task`, ...).
pub fn table_of(entity: &str) -> Option<Table> {
    use super::{companies, contacts, leads, opportunities, tasks};
    Some(match entity {
        "lead" => leads::Lead::TABLE,
        "contact" => contacts::Contact::TABLE,
        "company" => companies::Company::TABLE,
        "opportunity" => opportunities::Opportunity::TABLE,
        "task" => tasks::Task::TABLE,
        _ => return None,
    })
}

/// A filterable field of an entity: each entity lists its fields as an enum and says which
/// SQL expression each one is (a whitelist: clients never name columns).
pub trait Field: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// A column or expression over the entity's table, qualified with the table name.
    fn sql(self) -> &'static str;
}

/// What a filter compares: a field, or a custom field by key.
#[derive(Debug, Clone, PartialEq)]
pub enum Target<F> {
    Field(F),
    /// `custom_fields ->> key` as text.
    CustomText(String),
    /// `custom_fields -> key` when it is a JSON number, else NULL.
    CustomNumber(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    /// The value is a list.
    In,
    NotIn,
    /// Case-insensitive substring.
    Contains,
    /// Case-insensitive prefix.
    StartsWith,
}

/// A boolean condition over a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate<F> {
    Compare(Target<F>, Op, Bind),
    IsNull(Target<F>, bool),
    /// The row's tags include every one of these.
    HasTags(Vec<String>),
    All(Vec<Predicate<F>>),
    Any(Vec<Predicate<F>>),
    Not(Box<Predicate<F>>),
}

/// Deepest nesting of `and`/`or`/`not` in one filter.
pub const MAX_FILTER_NESTING: usize = 10;
/// Most conditions (comparisons, null checks, tag sets) in one filter. Each is a clause the
/// planner must handle: 20,000 of them took PostgreSQL 12 s to plan and run.
pub const MAX_FILTER_CONDITIONS: usize = 200;

impl<F> Predicate<F> {
    pub fn field(field: F, op: Op, value: Bind) -> Self {
        Predicate::Compare(Target::Field(field), op, value)
    }

    /// Refuses a filter past [`MAX_FILTER_NESTING`] or [`MAX_FILTER_CONDITIONS`] (walked
    /// with an explicit stack; the input's own nesting is already bounded by the GraphQL
    /// screen). Lists, statistics, bulk operations and exports all build their filters
    /// through this.
    pub fn check_size(&self, field: &str) -> AppResult<()> {
        // Each and/or/not level of a filter input is two levels here: the list or the
        // negation, and the filter object inside it (an `All` of its conditions).
        const MAX_DEPTH: usize = 2 * MAX_FILTER_NESTING + 1;
        let mut stack: Vec<(&Predicate<F>, usize)> = vec![(self, 0)];
        let mut conditions = 0usize;
        while let Some((predicate, depth)) = stack.pop() {
            match predicate {
                Predicate::All(items) | Predicate::Any(items) => {
                    if depth >= MAX_DEPTH {
                        return Err(too_nested(field));
                    }
                    stack.extend(items.iter().map(|p| (p, depth + 1)));
                }
                Predicate::Not(inner) => {
                    if depth >= MAX_DEPTH {
                        return Err(too_nested(field));
                    }
                    stack.push((inner, depth + 1));
                }
                _ => {
                    conditions += 1;
                    if conditions > MAX_FILTER_CONDITIONS {
                        return Err(AppError::bad_input(
                            field,
                            format!("a filter may hold at most {MAX_FILTER_CONDITIONS} conditions"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn too_nested(field: &str) -> AppError {
    AppError::bad_input(
        field,
        format!("a filter may nest and/or/not at most {MAX_FILTER_NESTING} levels deep"),
    )
}

/// "Assigned to me" / "owned by me", the one rule behind GraphQL's `assignedToMe` /
/// `ownedByMe` and the CSV export's `assigned_to_me=` / `owned_by_me=`: with `true` the field
/// is the caller; with `false` it is not, which includes records assigned to nobody.
pub fn is_me<F>(field: F, viewer: &Viewer, yes: bool) -> Predicate<F> {
    let mine = Predicate::field(field, Op::Eq, Bind::Int(viewer.user_id.0));
    if yes {
        mine
    } else {
        Predicate::Not(Box::new(mine))
    }
}

fn target_sql<F: Field>(table: &str, target: &Target<F>) -> Sql {
    match target {
        Target::Field(field) => Sql::new(field.sql()),
        Target::CustomText(key) => {
            let mut sql = Sql::new(&format!("({table}.custom_fields ->> "));
            sql.bind(Bind::Text(key.clone())).push(")");
            sql
        }
        Target::CustomNumber(key) => {
            let mut sql = Sql::new(&format!(
                "(CASE WHEN jsonb_typeof({table}.custom_fields -> "
            ));
            sql.bind(Bind::Text(key.clone()))
                .push(&format!(") = 'number' THEN ({table}.custom_fields ->> "))
                .bind(Bind::Text(key.clone()))
                .push(")::numeric END)");
            sql
        }
    }
}

/// Appends `predicate` as SQL for rows of `table`.
pub fn compile<F: Field>(table: &str, predicate: &Predicate<F>, out: &mut Sql) {
    // A filter tree is the client's shape: not worth a prepared statement of its own.
    out.uncacheable();
    match predicate {
        Predicate::Compare(target, op, value) => {
            let left = target_sql(table, target);
            out.push("(");
            match op {
                Op::In | Op::NotIn => {
                    // NULL is "not in" any list.
                    out.push(if *op == Op::In {
                        "COALESCE("
                    } else {
                        "NOT COALESCE("
                    });
                    out.append(left)
                        .push(" = ANY(")
                        .bind(value.clone())
                        .push("), false)");
                }
                Op::Contains | Op::StartsWith => {
                    let text = match value {
                        Bind::Text(text) => text.as_str(),
                        _ => "",
                    };
                    let pattern = if *op == Op::Contains {
                        contains_pattern(text)
                    } else {
                        prefix_pattern(text)
                    };
                    out.append(left)
                        .push("::text ILIKE ")
                        .bind(Bind::Text(pattern));
                }
                Op::Ne => {
                    out.append(left)
                        .push(" IS DISTINCT FROM ")
                        .bind(value.clone());
                }
                _ => {
                    let symbol = match op {
                        Op::Eq => " = ",
                        Op::Lt => " < ",
                        Op::Lte => " <= ",
                        Op::Gt => " > ",
                        _ => " >= ",
                    };
                    out.append(left).push(symbol).bind(value.clone());
                }
            }
            out.push(")");
        }
        Predicate::IsNull(target, is_null) => {
            out.push("(")
                .append(target_sql(table, target))
                .push(if *is_null {
                    " IS NULL)"
                } else {
                    " IS NOT NULL)"
                });
        }
        Predicate::HasTags(tags) => {
            out.push(&format!("({table}.tags @> "))
                .bind(Bind::Texts(tags.clone()))
                .push(")");
        }
        Predicate::All(items) | Predicate::Any(items) => {
            let all = matches!(predicate, Predicate::All(_));
            if items.is_empty() {
                out.push(if all { "TRUE" } else { "FALSE" });
                return;
            }
            out.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(if all { " AND " } else { " OR " });
                }
                compile(table, item, out);
            }
            out.push(")");
        }
        Predicate::Not(inner) => {
            // A comparison with NULL is "not true", so NOT keeps that row: NOT (x = 1)
            // includes rows where x is NULL.
            out.push("(NOT COALESCE(");
            compile(table, inner, out);
            out.push(", false))");
        }
    }
}

/// Text search over an entity's `search_text` column (trigram-indexed) and, for records that
/// belong to a company, over the searchable text (name, domain, phone, website) of the
/// companies the caller may see: "Acme" finds the people and deals of Acme Corporation. The
/// company side is a separate indexed lookup (nothing of the company is copied into its
/// records, so renaming a company needs no rewrite of them), scoped like any company read so
/// a search never reveals a company the caller cannot see.
pub fn search(viewer: &Viewer, table: &Table, text: &str, out: &mut Sql) {
    // The best plan depends on the text (a rare word: the trigram index; a common one: walk
    // the sort order), so a search is planned with its value each time, never generically.
    out.uncacheable();
    let pattern = contains_pattern(&text.trim().to_lowercase());
    let name = table.name;
    out.push(&format!("({name}.search_text LIKE "))
        .bind(Bind::Text(pattern.clone()));
    if let Some(company) = table.company_column {
        let companies = <super::companies::Company as Listable>::TABLE;
        // `= ANY(ARRAY(...))`, not `IN (...)`: the companies are found first (an init plan) and
        // their records through the `company_id` index, so a rare word stays a bitmap OR of
        // two index scans instead of a walk over every row.
        out.push(&format!(
            " OR {name}.{company} = ANY(ARRAY(SELECT companies.id FROM companies WHERE "
        ))
        .append(scope(viewer, &companies, Deleted::Hide))
        .push(" AND companies.search_text LIKE ")
        .bind(Bind::Text(pattern))
        .push("))");
    }
    out.push(")");
}

/// One key of an ordering. NULLs sort as the largest value (PostgreSQL's default), so they
/// come last ascending and first descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// A column or expression qualified with the table name (from an entity's whitelist).
    pub sql: &'static str,
    pub descending: bool,
}

/// A position between rows: the sort-key values of the row the page starts after or before,
/// then its ID. `order` names the ordering so a cursor is never applied to another one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "o")]
    pub order: String,
    #[serde(rename = "v")]
    pub values: Vec<CursorValue>,
    #[serde(rename = "i")]
    pub id: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CursorValue {
    Null,
    Text(String),
    Int(i64),
    Decimal(String),
    Timestamp(DateTime<Utc>),
    Date(NaiveDate),
}

impl CursorValue {
    fn bind(&self) -> Option<Bind> {
        Some(match self {
            CursorValue::Null => return None,
            CursorValue::Text(v) => Bind::Text(v.clone()),
            CursorValue::Int(v) => Bind::Int(*v),
            CursorValue::Decimal(v) => Bind::Decimal(v.parse::<BigDecimal>().ok()?),
            CursorValue::Timestamp(v) => Bind::Timestamp(*v),
            CursorValue::Date(v) => Bind::Date(*v),
        })
    }
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Decodes a cursor made for `order`; `field` names the argument in the error.
    pub fn decode(field: &str, text: &str, order: &str) -> AppResult<Self> {
        let bad = || AppError::bad_input(field, format!("{field} is not a valid cursor"));
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if cursor.order != order {
            return Err(AppError::bad_input(
                field,
                format!("{field} was made for another orderBy; start again from the first page"),
            ));
        }
        Ok(cursor)
    }
}

/// The ordering of a list: the keys, then the ID as the final tie-breaker (so the order is
/// total and pages never skip or repeat rows).
#[derive(Debug, Clone)]
pub struct Ordering {
    pub keys: Vec<SortKey>,
}

impl Ordering {
    /// A name for the ordering, stored in cursors.
    pub fn signature(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}{}", if k.descending { "-" } else { "+" }, k.sql))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn id_descending(&self) -> bool {
        self.keys.last().is_some_and(|k| k.descending)
    }

    /// `ORDER BY`, reversed for backward paging.
    pub fn order_by(&self, table: &str, reverse: bool) -> String {
        let dir = |descending: bool| if descending != reverse { "DESC" } else { "ASC" };
        let mut parts: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{} {}", k.sql, dir(k.descending)))
            .collect();
        parts.push(format!("{table}.id {}", dir(self.id_descending())));
        parts.join(", ")
    }

    /// Rows strictly after `cursor` in this ordering (or before it, with `reverse`).
    pub fn after(&self, table: &str, cursor: &Cursor, reverse: bool, out: &mut Sql) {
        let mut keys: Vec<(String, bool, Option<Bind>)> = self
            .keys
            .iter()
            .zip(
                cursor
                    .values
                    .iter()
                    .map(CursorValue::bind)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(k, v)| (k.sql.to_string(), k.descending != reverse, v))
            .collect();
        keys.push((
            format!("{table}.id"),
            self.id_descending() != reverse,
            Some(Bind::Int(cursor.id)),
        ));
        out.push("(");
        for i in 0..keys.len() {
            if i > 0 {
                out.push(" OR ");
            }
            out.push("(");
            for (column, _, value) in &keys[..i] {
                match value {
                    Some(v) => {
                        out.push(&format!("{column} = ")).bind(v.clone());
                    }
                    None => {
                        out.push(&format!("{column} IS NULL"));
                    }
                }
                out.push(" AND ");
            }
            let (column, descending, value) = &keys[i];
            match (descending, value) {
                (false, Some(v)) => {
                    out.push(&format!("({column} > "))
                        .bind(v.clone())
                        .push(&format!(" OR {column} IS NULL)"));
                }
                (false, None) => {
                    out.push("FALSE");
                }
                (true, Some(v)) => {
                    out.push(&format!("{column} < ")).bind(v.clone());
                }
                (true, None) => {
                    out.push(&format!("{column} IS NOT NULL"));
                }
            }
            out.push(")");
        }
        out.push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{UserId, WorkspaceId};

    fn viewer(role: Role) -> Viewer {
        Viewer {
            user_id: UserId(7),
            workspace_id: WorkspaceId(3),
            role,
            email: "v@example.com".into(),
            session_id: uuid::Uuid::nil(),
            token_expires_at: chrono::Utc::now(),
            workflow_run: None,
        }
    }

    const LEADS: Table = Table {
        name: "leads",
        owner_column: "owner_id",
        assignee_column: Some("assigned_to_id"),
        company_column: None,
    };

    #[test]
    fn members_see_their_own_rows_only() {
        let sql = scope(&viewer(Role::Member), &LEADS, Deleted::Hide);
        assert_eq!(
            sql.text(),
            "leads.workspace_id = $1 AND leads.deleted_at IS NULL AND (leads.owner_id = $2 OR leads.assigned_to_id = $3)"
        );
        let sql = scope(&viewer(Role::Manager), &LEADS, Deleted::Include);
        assert_eq!(sql.text(), "leads.workspace_id = $1");
    }

    #[derive(Debug, Clone, Copy)]
    struct Status;

    impl Field for Status {
        fn sql(self) -> &'static str {
            "leads.status"
        }
    }

    #[test]
    fn predicates_compile_with_binds() {
        let predicate = Predicate::Any(vec![
            Predicate::field(Status, Op::Eq, Bind::Text("new".into())),
            Predicate::Not(Box::new(Predicate::Compare(
                Target::CustomText("region".into()),
                Op::Contains,
                Bind::Text("we%st".into()),
            ))),
        ]);
        let mut sql = Sql::new("");
        compile("leads", &predicate, &mut sql);
        assert_eq!(
            sql.text(),
            "((leads.status = $1) OR (NOT COALESCE(((leads.custom_fields ->> $2)::text ILIKE $3), false)))"
        );
        assert_eq!(sql.binds()[2], Bind::Text("%we\\%st%".into()));
    }

    #[test]
    fn keyset_condition_handles_nulls_and_directions() {
        let ordering = Ordering {
            keys: vec![SortKey {
                sql: "leads.score",
                descending: true,
            }],
        };
        let cursor = Cursor {
            order: ordering.signature(),
            values: vec![CursorValue::Null],
            id: 5,
        };
        let mut sql = Sql::new("");
        ordering.after("leads", &cursor, false, &mut sql);
        assert_eq!(
            sql.text(),
            "((leads.score IS NOT NULL) OR (leads.score IS NULL AND leads.id < $1))"
        );
        assert_eq!(
            ordering.order_by("leads", false),
            "leads.score DESC, leads.id DESC"
        );
        assert_eq!(
            ordering.order_by("leads", true),
            "leads.score ASC, leads.id ASC"
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_another_order() {
        let cursor = Cursor {
            order: "+name".into(),
            values: vec![CursorValue::Text("Ann".into())],
            id: 9,
        };
        let text = cursor.encode();
        assert_eq!(Cursor::decode("after", &text, "+name").unwrap(), cursor);
        assert!(Cursor::decode("after", &text, "-name").is_err());
        assert!(Cursor::decode("after", "garbage", "+name").is_err());
    }
}

/// A row type the list engine can load: its table, its filterable fields and how to read the
/// value of a sort key from a row (for cursors).
pub trait Listable: QueryableByName<Pg> + Send + Sized + 'static {
    type Field: Field;
    const TABLE: Table;
    /// [`Table::owner_column`] and [`Table::assignee_column`] as filter fields.
    const OWNER_FIELD: Self::Field;
    const ASSIGNEE_FIELD: Option<Self::Field>;
    /// The kind's name in errors ("lead not found").
    const WHAT: &'static str;
    /// The input field a unique index of the kind guards (a restore can clash on it).
    const UNIQUE_FIELD: Option<&'static str> = None;
    fn id(&self) -> i64;
    /// The value of `key` (one of the entity's own sort keys) in this row.
    fn sort_value(&self, key: &SortKey) -> CursorValue;
}

/// A kind of record that can belong to a company (`Company.contacts`,
/// `Company.opportunities`), through its `company_id` column.
pub trait CompanyChild: Listable {
    fn company(&self) -> Option<i64>;
}

/// Most records of one kind a company lists (`Company.contacts`, ...): a fixed-size preview;
/// the full set is a filtered list query away.
pub const PER_COMPANY: i64 = 200;

/// The visible, live records of each of `companies`, newest first and at most [`PER_COMPANY`]
/// each, in one query for all the companies.
pub async fn of_companies<R: CompanyChild>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    companies: &[i64],
) -> AppResult<Vec<R>> {
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!(
        "SELECT * FROM (SELECT {table}.*, row_number() OVER (PARTITION BY {table}.company_id \
         ORDER BY {table}.created_at DESC, {table}.id DESC) AS position FROM {table} WHERE "
    ));
    sql.append(scope(viewer, &R::TABLE, Deleted::Hide))
        .push(&format!(" AND {table}.company_id = ANY("))
        .bind(Bind::Ints(companies.to_vec()))
        .push(")) AS ranked WHERE position <= ")
        .bind(Bind::Int(PER_COMPANY))
        .push(" ORDER BY company_id, position");
    Ok(sql.into_query().load(conn).await?)
}

/// A list request: filter, search, order and page, cursors still encoded.
#[derive(Debug, Clone)]
pub struct ListQuery<F> {
    pub filter: Option<Predicate<F>>,
    pub search: Option<String>,
    pub ordering: Ordering,
    pub page: PageArgs<String>,
    pub deleted: Deleted,
    /// Whether to count all matches (a second query); skipped when nobody asked for it.
    pub count: bool,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

/// The WHERE clause of a list: scope, filter and search.
pub fn conditions<R: Listable>(viewer: &Viewer, query: &ListQuery<R::Field>) -> Sql {
    let table = R::TABLE.name;
    let mut sql = scope(viewer, &R::TABLE, query.deleted);
    if let Some(filter) = &query.filter {
        sql.push(" AND ");
        compile(table, filter, &mut sql);
    }
    if let Some(text) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        sql.push(" AND ");
        search(viewer, &R::TABLE, text, &mut sql);
    }
    sql
}

/// One page of rows the caller may see, each with its cursor, and the total count.
pub async fn list<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    query: &ListQuery<R::Field>,
) -> AppResult<Page<(Cursor, R)>> {
    let window = query.page.window()?;
    let ordering = &query.ordering;
    let signature = ordering.signature();
    let decode = |field: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| Cursor::decode(field, t, &signature))
            .transpose()
    };
    let after = decode("after", &query.page.after)?;
    let before = decode("before", &query.page.before)?;
    let table = R::TABLE.name;
    let conditions = conditions::<R>(viewer, query);

    let total = if query.count {
        let mut count = Sql::new(&format!("SELECT count(*) AS count FROM {table} WHERE "));
        count.append(conditions.clone());
        let row: CountRow = count.into_query().get_result(conn).await?;
        row.count
    } else {
        0
    };

    let mut sql = Sql::new(&format!("SELECT {table}.* FROM {table} WHERE "));
    sql.append(conditions);
    if ordering.keys.len() > 1 {
        // One client sort key (plus the ID tiebreak) keeps the prepared shapes few.
        sql.uncacheable();
    }
    if let Some(cursor) = &after {
        sql.push(" AND ");
        ordering.after(table, cursor, false, &mut sql);
    }
    if let Some(cursor) = &before {
        sql.push(" AND ");
        ordering.after(table, cursor, true, &mut sql);
    }
    sql.push(&format!(
        " ORDER BY {} LIMIT ",
        ordering.order_by(table, window.backward)
    ))
    .bind(Bind::Int(window.fetch()));
    let rows: Vec<R> = sql.into_query().load(conn).await?;
    let rows = rows
        .into_iter()
        .map(|row| {
            let cursor = Cursor {
                order: signature.clone(),
                values: ordering.keys.iter().map(|k| row.sort_value(k)).collect(),
                id: row.id(),
            };
            (cursor, row)
        })
        .collect();
    Ok(window.finish(rows, total))
}

/// One row the caller may see, optionally locked for update.
pub async fn find<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
    deleted: Deleted,
    lock: bool,
) -> AppResult<Option<R>> {
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!("SELECT {table}.* FROM {table} WHERE "));
    sql.append(scope(viewer, &R::TABLE, deleted))
        .push(&format!(" AND {table}.id = "))
        .bind(Bind::Int(id));
    if lock {
        sql.push(" FOR UPDATE");
    }
    Ok(sql.into_query().get_result(conn).await.optional()?)
}

/// A row the caller may see, or NOT_FOUND.
pub async fn get<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
    deleted: Deleted,
) -> AppResult<R> {
    find::<R>(conn, viewer, id, deleted, false)
        .await?
        .ok_or(AppError::NotFound(R::WHAT))
}

/// A row the caller has just changed, read back within its workspace only. A member who hands
/// a record they were assigned to someone else may no longer see it, yet the change was theirs
/// to make and they are owed its result; reading it back through [`scope`] would turn their
/// successful change into NOT_FOUND (and roll it back).
pub async fn get_written<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
) -> AppResult<R> {
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!(
        "SELECT {table}.* FROM {table} WHERE {table}.workspace_id = "
    ));
    sql.bind(Bind::Int(viewer.workspace_id.0))
        .push(&format!(" AND {table}.id = "))
        .bind(Bind::Int(id));
    sql.into_query()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(AppError::NotFound(R::WHAT))
}

/// A record named in an input (`companyId`, `leadId`, ...) must be live and visible to the
/// caller; otherwise the input is wrong: BAD_USER_INPUT on `field`.
pub async fn referenced<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
    field: &str,
) -> AppResult<R> {
    find::<R>(conn, viewer, id, Deleted::Hide, false)
        .await?
        .ok_or_else(|| {
            AppError::bad_input(field, format!("{field} is not a {} you can see", R::WHAT))
        })
}

/// The rows with these IDs that the caller may see (deleted ones included: a record that
/// points at a deleted one still shows it). For DataLoaders: one query for many rows.
pub async fn find_many<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    ids: &[i64],
) -> AppResult<Vec<R>> {
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!("SELECT {table}.* FROM {table} WHERE "));
    sql.append(scope(viewer, &R::TABLE, Deleted::Include))
        .push(&format!(" AND {table}.id = ANY("))
        .bind(Bind::Ints(ids.to_vec()))
        .push(")");
    Ok(sql.into_query().load(conn).await?)
}

/// Soft-deletes (or restores) a row the caller may see and returns it as it is now. Deleting a
/// deleted row, or restoring a live one, changes nothing.
pub async fn set_deleted<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: i64,
    deleted: bool,
) -> AppResult<R> {
    let viewer = viewer.clone();
    conn.transaction::<_, AppError, _>(async move |conn| {
        find::<R>(conn, &viewer, id, Deleted::Include, true)
            .await?
            .ok_or(AppError::NotFound(R::WHAT))?;
        let table = R::TABLE.name;
        let before = super::events::snapshot(conn, table, &[id]).await?;
        let change = if deleted {
            "deleted_at = COALESCE(deleted_at, now())"
        } else {
            "deleted_at = NULL"
        };
        let mut sql = Sql::new(&format!(
            "UPDATE {table} SET {change}, updated_at = now() WHERE id = "
        ));
        sql.bind(Bind::Int(id));
        sql.into_query()
            .execute(conn)
            .await
            .map_err(|err| match err {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => match R::UNIQUE_FIELD {
                    Some(field) => AppError::conflict_on(
                        field,
                        format!("a live {} already has this {field}", R::WHAT),
                    ),
                    None => AppError::conflict(
                        "a live record already has one of this record's unique values",
                    ),
                },
                other => other.into(),
            })?;
        let action = if deleted { "deleted" } else { "restored" };
        super::events::changed(conn, &viewer, (table, R::WHAT), action, &[id], &before).await?;
        get::<R>(conn, &viewer, id, Deleted::Include).await
    })
    .await
}

/// Which rows a bulk operation touches.
#[derive(Debug, Clone)]
pub enum Selection<F> {
    Ids(Vec<i64>),
    Filter(Predicate<F>),
}

/// The IDs of the live rows a background operation covers (no row locks, no cap: the work
/// runs in batches later). With IDs, every one must be visible, else NOT_FOUND.
pub async fn selected_ids<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    selection: &Selection<R::Field>,
) -> AppResult<Vec<i64>> {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let table = R::TABLE.name;
    let (mut sql, wanted) = selected::<R>(viewer, selection, &format!("{table}.id"), None)?;
    sql.push(&format!(" ORDER BY {table}.id"));
    let ids: Vec<i64> = sql
        .into_query()
        .load::<Id>(conn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if wanted.is_some_and(|n| n != ids.len()) {
        return Err(AppError::NotFound(R::WHAT));
    }
    Ok(ids)
}

/// `SELECT columns` of the visible live rows of a selection, and how many IDs it named. IDs
/// beyond `cap` are refused.
fn selected<R: Listable>(
    viewer: &Viewer,
    selection: &Selection<R::Field>,
    columns: &str,
    cap: Option<usize>,
) -> AppResult<(Sql, Option<usize>)> {
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!("SELECT {columns} FROM {table} WHERE "));
    sql.append(scope(viewer, &R::TABLE, Deleted::Hide));
    let wanted = match selection {
        Selection::Ids(ids) => {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                return Err(AppError::bad_input("ids", "give at least one ID"));
            }
            if let Some(cap) = cap.filter(|&cap| ids.len() > cap) {
                return Err(AppError::bad_input(
                    "ids",
                    format!("at most {cap} IDs at once"),
                ));
            }
            sql.push(&format!(" AND {table}.id = ANY("))
                .bind(Bind::Ints(ids.clone()))
                .push(")");
            Some(ids.len())
        }
        Selection::Filter(filter) => {
            sql.push(" AND ");
            compile(table, filter, &mut sql);
            None
        }
    };
    Ok((sql, wanted))
}

/// Most rows one bulk operation may touch (one transaction holds their locks).
pub const MAX_BULK: usize = 10_000;

/// Locks and returns the live rows a bulk operation touches. With IDs, every one must be
/// visible (else NOT_FOUND and nothing happens); with a filter, all visible matches.
pub async fn select_for_bulk<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    selection: &Selection<R::Field>,
) -> AppResult<Vec<R>> {
    let table = R::TABLE.name;
    let (mut sql, wanted) =
        selected::<R>(viewer, selection, &format!("{table}.*"), Some(MAX_BULK))?;
    sql.push(&format!(" ORDER BY {table}.id LIMIT "))
        .bind(Bind::Int(MAX_BULK as i64 + 1))
        .push(" FOR UPDATE");
    let rows: Vec<R> = sql.into_query().load(conn).await?;
    if rows.len() > MAX_BULK {
        return Err(AppError::bad_input(
            "filter",
            format!("the filter matches more than {MAX_BULK} records; narrow it"),
        ));
    }
    if wanted.is_some_and(|n| n != rows.len()) {
        return Err(AppError::NotFound(R::WHAT));
    }
    Ok(rows)
}

/// Soft-deletes every selected row in one transaction; returns how many.
pub async fn bulk_delete<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    selection: Selection<R::Field>,
) -> AppResult<usize> {
    let viewer = viewer.clone();
    conn.transaction::<_, AppError, _>(async move |conn| {
        let rows = select_for_bulk::<R>(conn, &viewer, &selection).await?;
        let ids: Vec<i64> = rows.iter().map(R::id).collect();
        let table = R::TABLE.name;
        let before = super::events::snapshot(conn, table, &ids).await?;
        let mut sql = Sql::new(&format!(
            "UPDATE {table} SET deleted_at = now(), updated_at = now() WHERE id = ANY("
        ));
        sql.bind(Bind::Ints(ids.clone())).push(")");
        let deleted = sql.into_query().execute(conn).await?;
        super::events::changed(conn, &viewer, (table, R::WHAT), "deleted", &ids, &before).await?;
        Ok(deleted)
    })
    .await
}
