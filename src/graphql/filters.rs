//! Typed filter inputs shared by every list (`StringFilter`, `IntFilter`, ...) and the scalars
//! they need. Each turns into domain predicates on one field; the entity filters (`LeadFilter`,
//! ...) combine them with `and`, `or` and `not`.

use std::str::FromStr;

use async_graphql::{
    InputObject, InputType, InputValueError, InputValueResult, Scalar, ScalarType, Value, ID,
};
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};

use super::ids::parse_id;
use crate::auth::Viewer;
use crate::crm::query::{self, Covered, Deleted, ListQuery, Op, Ordering, Predicate, Target};
use crate::crm::sql::Bind;
use crate::crm::Sort;
use crate::error::{AppError, AppResult};

/// Most values an `in` / `notIn` list may hold.
pub const MAX_LIST: usize = 1000;

/// An exact decimal number (money, amounts), sent and received as a string such as
/// "1234.50" to keep every digit; plain JSON numbers are accepted as input.
#[derive(Debug, Clone, PartialEq)]
pub struct Decimal(pub BigDecimal);

/// An exact decimal number (money, amounts), sent and received as a string such as
/// "1234.50" to keep every digit; plain JSON numbers are accepted as input.
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match &value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        BigDecimal::from_str(&text)
            .map(Decimal)
            .map_err(|_| InputValueError::custom(format!("{text:?} is not a decimal number")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

/// A calendar date, `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Date(pub chrono::NaiveDate);

/// A calendar date, `YYYY-MM-DD`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map(Date)
                .map_err(|_| {
                    InputValueError::custom(format!("{s:?} is not a date in the form YYYY-MM-DD"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Collects the conditions of one field filter.
struct Conditions<F> {
    target: Target<F>,
    out: Vec<Predicate<F>>,
}

impl<F: Clone> Conditions<F> {
    fn new(target: Target<F>) -> Self {
        Conditions {
            target,
            out: Vec::new(),
        }
    }

    fn add(&mut self, op: Op, value: Option<Bind>) {
        if let Some(value) = value {
            self.out
                .push(Predicate::Compare(self.target.clone(), op, value));
        }
    }

    /// `in` and `notIn`, each at most [`MAX_LIST`] values, bound as one array.
    fn lists<T>(
        &mut self,
        field: &str,
        in_: Option<Vec<T>>,
        not_in: Option<Vec<T>>,
        array: impl Fn(Vec<T>) -> AppResult<Bind>,
    ) -> AppResult<()> {
        for (op, values) in [(Op::In, in_), (Op::NotIn, not_in)] {
            if let Some(values) = values {
                if values.len() > MAX_LIST {
                    return Err(AppError::bad_input(
                        field,
                        format!("at most {MAX_LIST} values in a list"),
                    ));
                }
                self.add(op, Some(array(values)?));
            }
        }
        Ok(())
    }

    fn null(&mut self, is_null: Option<bool>) {
        if let Some(is_null) = is_null {
            self.out
                .push(Predicate::IsNull(self.target.clone(), is_null));
        }
    }
}

/// Conditions on a text field. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct StringFilter {
    /// Equal to.
    pub eq: Option<String>,
    /// Not equal to (rows without a value count as not equal).
    pub ne: Option<String>,
    /// One of these values.
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
    /// None of these values.
    pub not_in: Option<Vec<String>>,
    /// Sorts before.
    pub lt: Option<String>,
    /// Sorts before or equal.
    pub lte: Option<String>,
    /// Sorts after.
    pub gt: Option<String>,
    /// Sorts after or equal.
    pub gte: Option<String>,
    /// Contains this text, ignoring case.
    pub contains: Option<String>,
    /// Starts with this text, ignoring case.
    pub starts_with: Option<String>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl StringFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let text = |v: Option<String>| v.map(Bind::Text);
        c.add(Op::Eq, text(self.eq));
        c.add(Op::Ne, text(self.ne));
        c.add(Op::Lt, text(self.lt));
        c.add(Op::Lte, text(self.lte));
        c.add(Op::Gt, text(self.gt));
        c.add(Op::Gte, text(self.gte));
        c.add(Op::Contains, text(self.contains));
        c.add(Op::StartsWith, text(self.starts_with));
        c.lists(field, self.in_, self.not_in, |v| Ok(Bind::Texts(v)))?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on a whole-number field. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct IntFilter {
    /// Equal to.
    pub eq: Option<i32>,
    /// Not equal to (rows without a value count as not equal).
    pub ne: Option<i32>,
    /// One of these values.
    #[graphql(name = "in")]
    pub in_: Option<Vec<i32>>,
    /// None of these values.
    pub not_in: Option<Vec<i32>>,
    /// Less than.
    pub lt: Option<i32>,
    /// Less than or equal.
    pub lte: Option<i32>,
    /// Greater than.
    pub gt: Option<i32>,
    /// Greater than or equal.
    pub gte: Option<i32>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl IntFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let int = |v: Option<i32>| v.map(|n| Bind::Int(i64::from(n)));
        c.add(Op::Eq, int(self.eq));
        c.add(Op::Ne, int(self.ne));
        c.add(Op::Lt, int(self.lt));
        c.add(Op::Lte, int(self.lte));
        c.add(Op::Gt, int(self.gt));
        c.add(Op::Gte, int(self.gte));
        c.lists(field, self.in_, self.not_in, |v| {
            Ok(Bind::Ints(v.into_iter().map(i64::from).collect()))
        })?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on a decimal field. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct DecimalFilter {
    /// Equal to.
    pub eq: Option<Decimal>,
    /// Not equal to (rows without a value count as not equal).
    pub ne: Option<Decimal>,
    /// One of these values.
    #[graphql(name = "in")]
    pub in_: Option<Vec<Decimal>>,
    /// None of these values (rows without a value count as in none).
    pub not_in: Option<Vec<Decimal>>,
    /// Less than.
    pub lt: Option<Decimal>,
    /// Less than or equal.
    pub lte: Option<Decimal>,
    /// Greater than.
    pub gt: Option<Decimal>,
    /// Greater than or equal.
    pub gte: Option<Decimal>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl DecimalFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let dec = |v: Option<Decimal>| v.map(|d| Bind::Decimal(d.0));
        c.add(Op::Eq, dec(self.eq));
        c.add(Op::Ne, dec(self.ne));
        c.add(Op::Lt, dec(self.lt));
        c.add(Op::Lte, dec(self.lte));
        c.add(Op::Gt, dec(self.gt));
        c.add(Op::Gte, dec(self.gte));
        c.lists(field, self.in_, self.not_in, |values| {
            Ok(Bind::Decimals(values.into_iter().map(|d| d.0).collect()))
        })?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on a date-time field. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct DateTimeFilter {
    /// Exactly at.
    pub eq: Option<DateTime<Utc>>,
    /// Not exactly at (rows without a value count as not equal).
    pub ne: Option<DateTime<Utc>>,
    /// At one of these moments.
    #[graphql(name = "in")]
    pub in_: Option<Vec<DateTime<Utc>>>,
    /// At none of these moments (rows without a value count as at none).
    pub not_in: Option<Vec<DateTime<Utc>>>,
    /// Before.
    pub lt: Option<DateTime<Utc>>,
    /// At or before.
    pub lte: Option<DateTime<Utc>>,
    /// After.
    pub gt: Option<DateTime<Utc>>,
    /// At or after.
    pub gte: Option<DateTime<Utc>>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl DateTimeFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let at = |v: Option<DateTime<Utc>>| v.map(Bind::Timestamp);
        c.add(Op::Eq, at(self.eq));
        c.add(Op::Ne, at(self.ne));
        c.add(Op::Lt, at(self.lt));
        c.add(Op::Lte, at(self.lte));
        c.add(Op::Gt, at(self.gt));
        c.add(Op::Gte, at(self.gte));
        c.lists(field, self.in_, self.not_in, |v| Ok(Bind::Timestamps(v)))?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on a date field. Every condition given must hold.
#[derive(InputObject, Default)]
pub struct DateFilter {
    /// On this day.
    pub eq: Option<Date>,
    /// Not on this day (rows without a value count as not equal).
    pub ne: Option<Date>,
    /// On one of these days.
    #[graphql(name = "in")]
    pub in_: Option<Vec<Date>>,
    /// On none of these days (rows without a value count as on none).
    pub not_in: Option<Vec<Date>>,
    /// Before.
    pub lt: Option<Date>,
    /// On or before.
    pub lte: Option<Date>,
    /// After.
    pub gt: Option<Date>,
    /// On or after.
    pub gte: Option<Date>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl DateFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let day = |v: Option<Date>| v.map(|d| Bind::Date(d.0));
        c.add(Op::Eq, day(self.eq));
        c.add(Op::Ne, day(self.ne));
        c.add(Op::Lt, day(self.lt));
        c.add(Op::Lte, day(self.lte));
        c.add(Op::Gt, day(self.gt));
        c.add(Op::Gte, day(self.gte));
        c.lists(field, self.in_, self.not_in, |days| {
            Ok(Bind::Dates(days.into_iter().map(|d| d.0).collect()))
        })?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on a reference to another record or user.
#[derive(InputObject, Default)]
pub struct IdFilter {
    /// Equal to.
    pub eq: Option<ID>,
    /// Not equal to (rows without a value count as not equal).
    pub ne: Option<ID>,
    /// One of these.
    #[graphql(name = "in")]
    pub in_: Option<Vec<ID>>,
    /// None of these.
    pub not_in: Option<Vec<ID>>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl IdFilter {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let id = |v: Option<ID>| v.map(|i| parse_id(field, &i).map(Bind::Int)).transpose();
        c.add(Op::Eq, id(self.eq)?);
        c.add(Op::Ne, id(self.ne)?);
        c.lists(field, self.in_, self.not_in, |v| {
            let ids = v
                .iter()
                .map(|i| parse_id(field, i))
                .collect::<AppResult<_>>()?;
            Ok(Bind::Ints(ids))
        })?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// An enumeration's stored text, for enum filters.
pub trait StoredAs {
    fn stored(&self) -> &'static str;
}

/// Conditions on an enumeration field.
#[derive(InputObject)]
#[graphql(concrete(name = "LeadStatusFilter", params(super::leads::LeadStatusValue)))]
#[graphql(concrete(name = "LeadSourceFilter", params(super::leads::LeadSourceValue)))]
#[graphql(concrete(name = "PriorityFilter", params(super::leads::PriorityValue)))]
#[graphql(concrete(name = "ContactTypeFilter", params(super::contacts::ContactTypeValue)))]
#[graphql(concrete(
    name = "ContactStatusFilter",
    params(super::contacts::ContactStatusValue)
))]
#[graphql(concrete(name = "StageFilter", params(super::opportunities::StageValue)))]
#[graphql(concrete(name = "TaskTypeFilter", params(super::tasks::TaskTypeValue)))]
#[graphql(concrete(name = "TaskStatusFilter", params(super::tasks::TaskStatusValue)))]
pub struct EnumFilter<T: InputType> {
    /// Equal to.
    pub eq: Option<T>,
    /// Not equal to (rows without a value count as not equal).
    pub ne: Option<T>,
    /// One of these.
    #[graphql(name = "in")]
    pub in_: Option<Vec<T>>,
    /// None of these.
    pub not_in: Option<Vec<T>>,
    /// Has no value (true) or has one (false).
    pub is_null: Option<bool>,
}

impl<T: InputType + StoredAs> EnumFilter<T> {
    pub fn predicates<F: Clone>(
        self,
        field: &str,
        target: Target<F>,
    ) -> AppResult<Vec<Predicate<F>>> {
        let mut c = Conditions::new(target);
        let one = |v: Option<T>| v.map(|e| Bind::Text(e.stored().to_string()));
        c.add(Op::Eq, one(self.eq));
        c.add(Op::Ne, one(self.ne));
        c.lists(field, self.in_, self.not_in, |list| {
            Ok(Bind::Texts(
                list.iter().map(|e| e.stored().to_string()).collect(),
            ))
        })?;
        c.null(self.is_null);
        Ok(c.out)
    }
}

/// Conditions on one custom field, by key. Text conditions compare the stored value as text;
/// `gt`/`lt` compare numbers (values that are not JSON numbers never match them).
#[derive(InputObject)]
pub struct CustomFieldFilter {
    /// The custom field's key.
    pub key: String,
    /// Equal to, as text.
    pub eq: Option<String>,
    /// Not equal to, as text.
    pub ne: Option<String>,
    /// Contains this text, ignoring case.
    pub contains: Option<String>,
    /// One of these values, as text.
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
    /// Greater than this number.
    pub gt: Option<Decimal>,
    /// Less than this number.
    pub lt: Option<Decimal>,
    /// The field is absent or null (true), or present (false).
    pub is_null: Option<bool>,
}

impl CustomFieldFilter {
    pub fn predicates<F: Clone>(self) -> AppResult<Vec<Predicate<F>>> {
        let key = self.key.trim().to_string();
        if key.is_empty() || key.chars().count() > 64 {
            return Err(AppError::bad_input(
                "custom.key",
                "a custom field key has 1 to 64 characters",
            ));
        }
        let text = StringFilter {
            eq: self.eq,
            ne: self.ne,
            in_: self.in_,
            contains: self.contains,
            is_null: self.is_null,
            ..Default::default()
        };
        let mut out = text.predicates("custom", Target::CustomText(key.clone()))?;
        out.extend(
            DecimalFilter {
                gt: self.gt,
                lt: self.lt,
                ..Default::default()
            }
            .predicates("custom", Target::CustomNumber(key))?,
        );
        Ok(out)
    }
}

/// Sort direction.
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum SortDirection {
    /// Smallest first; records without a value come last.
    #[default]
    Asc,
    /// Largest first; records without a value come first.
    Desc,
}

/// One key of an ordering.
#[derive(InputObject)]
#[graphql(concrete(name = "LeadOrderBy", params(super::leads::LeadOrderField)))]
#[graphql(concrete(name = "CompanyOrderBy", params(super::companies::CompanyOrderField)))]
#[graphql(concrete(name = "ContactOrderBy", params(super::contacts::ContactOrderField)))]
#[graphql(concrete(
    name = "OpportunityOrderBy",
    params(super::opportunities::OpportunityOrderField)
))]
#[graphql(concrete(name = "TaskOrderBy", params(super::tasks::TaskOrderField)))]
pub struct OrderBy<T: InputType> {
    /// The field.
    pub field: T,
    /// The direction (default ASC).
    #[graphql(default)]
    pub direction: SortDirection,
}

/// Most keys an `orderBy` may have.
pub const MAX_ORDER_KEYS: usize = 3;

/// The domain ordering for `orderBy`, or `default` (descending) when none is given.
pub fn ordering<T, S>(order_by: Option<Vec<OrderBy<T>>>, default_desc: S) -> AppResult<Ordering>
where
    T: InputType + Into<S>,
    S: Sort,
{
    let keys = match order_by {
        None => vec![default_desc.key(true)],
        Some(list) if list.len() > MAX_ORDER_KEYS => {
            return Err(AppError::bad_input(
                "orderBy",
                format!("at most {MAX_ORDER_KEYS} keys"),
            ))
        }
        Some(list) => list
            .into_iter()
            .map(|o| o.field.into().key(o.direction == SortDirection::Desc))
            .collect(),
    };
    Ok(Ordering { keys })
}

/// An entity's filter input (`LeadFilter`, ...): it turns itself into a domain predicate.
pub trait EntityFilter: Sized {
    type Field;
    /// `includeDeleted` at the top level.
    fn include_deleted(&self) -> bool;
    fn predicate(self, viewer: &Viewer) -> AppResult<Predicate<Self::Field>>;
}

/// The rows a list filter covers, for lists and statistics alike: its predicate, and the
/// deleted rows too when it says `includeDeleted: true` at its top level.
pub fn covered<Fi: EntityFilter>(
    viewer: &Viewer,
    filter: Option<Fi>,
) -> AppResult<Covered<Fi::Field>> {
    let deleted = if filter.as_ref().is_some_and(EntityFilter::include_deleted) {
        Deleted::Include
    } else {
        Deleted::Hide
    };
    let filter = filter.map(|f| f.predicate(viewer)).transpose()?;
    if let Some(predicate) = &filter {
        predicate.check_size("filter")?;
    }
    Ok(Covered { filter, deleted })
}

/// Adds the `and`, `or` and `not` parts of an entity filter to `all`.
pub fn combine<Fi: EntityFilter>(
    all: &mut Vec<Predicate<Fi::Field>>,
    viewer: &Viewer,
    and: Option<Vec<Fi>>,
    or: Option<Vec<Fi>>,
    not: Option<Box<Fi>>,
) -> AppResult<()> {
    if let Some(items) = and {
        let items = items
            .into_iter()
            .map(|i| i.predicate(viewer))
            .collect::<AppResult<_>>()?;
        all.push(Predicate::All(items));
    }
    if let Some(items) = or {
        let items = items
            .into_iter()
            .map(|i| i.predicate(viewer))
            .collect::<AppResult<_>>()?;
        all.push(Predicate::Any(items));
    }
    if let Some(inner) = not {
        all.push(Predicate::Not(Box::new(inner.predicate(viewer)?)));
    }
    Ok(())
}

/// `assignedToMe` / `ownedByMe`: the field is (or, with `false`, is not) the caller
/// ([`query::is_me`], the rule the CSV export shares).
pub fn is_me<F>(field: F, viewer: &Viewer, wanted: Option<bool>) -> Option<Predicate<F>> {
    wanted.map(|yes| query::is_me(field, viewer, yes))
}

/// Validates the shared list arguments and builds the domain query.
#[allow(clippy::too_many_arguments)]
pub fn list_query<Fi, T, S>(
    viewer: &Viewer,
    filter: Option<Fi>,
    search: Option<String>,
    order_by: Option<Vec<OrderBy<T>>>,
    default_desc: S,
    page: crate::pagination::PageArgs<String>,
    count: bool,
) -> AppResult<ListQuery<Fi::Field>>
where
    Fi: EntityFilter,
    T: InputType + Into<S>,
    S: Sort,
{
    if search.as_ref().is_some_and(|s| s.chars().count() > 200) {
        return Err(AppError::bad_input(
            "search",
            "search text must have at most 200 characters",
        ));
    }
    let Covered { filter, deleted } = covered(viewer, filter)?;
    Ok(ListQuery {
        filter,
        search,
        ordering: ordering(order_by, default_desc)?,
        page,
        deleted,
        count,
    })
}

/// An optional input of an update: absent leaves the field, `null` clears it.
pub fn maybe<T>(value: async_graphql::MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        async_graphql::MaybeUndefined::Undefined => None,
        async_graphql::MaybeUndefined::Null => Some(None),
        async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// The rows of a bulk operation: `ids` or `filter`, exactly one.
pub fn selection<Fi: EntityFilter>(
    viewer: &Viewer,
    ids: Option<Vec<async_graphql::ID>>,
    filter: Option<Fi>,
) -> AppResult<crate::crm::query::Selection<Fi::Field>> {
    use crate::crm::query::Selection;
    match (ids, filter) {
        (Some(ids), None) => Ok(Selection::Ids(
            ids.iter()
                .map(|id| parse_id("ids", id))
                .collect::<AppResult<_>>()?,
        )),
        (None, Some(filter)) => {
            let predicate = filter.predicate(viewer)?;
            predicate.check_size("filter")?;
            Ok(Selection::Filter(predicate))
        }
        _ => Err(AppError::bad_input("ids", "give either ids or filter")),
    }
}

/// The result of a bulk operation.
#[derive(async_graphql::SimpleObject)]
pub struct BulkPayload {
    /// How many records changed.
    pub count: i32,
}

impl BulkPayload {
    pub fn of(count: usize) -> Self {
        BulkPayload {
            count: i32::try_from(count).unwrap_or(i32::MAX),
        }
    }
}
