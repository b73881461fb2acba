//! Statistics over the records a caller may see, honouring the same filters as the lists.

use bigdecimal::BigDecimal;
use chrono::{Datelike, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Date, Nullable, Numeric, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::contacts::{Contact, ContactField};
use super::leads::{Lead, LeadField};
use super::opportunities::{Opportunity, OpportunityField, Stage};
use super::query::{conditions, is_me, Covered, ListQuery, Listable, Ordering, Predicate};
use super::sql::{Bind, Sql};
use super::tasks::{due_today, overdue, Task, TaskField};
use super::CrmService;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::pagination::PageArgs;

/// A score at or above this makes a lead "hot".
pub const HOT_SCORE: i64 = 70;

#[derive(Debug, Clone, Default)]
pub struct LeadStats {
    pub total: i64,
    pub by_status: Vec<(String, i64)>,
    pub by_priority: Vec<(String, i64)>,
    pub by_source: Vec<(String, i64)>,
    pub assigned_to_me: i64,
    pub average_score: Option<BigDecimal>,
    pub hot: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ContactStats {
    pub total: i64,
    pub by_type: Vec<(String, i64)>,
    pub by_status: Vec<(String, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskStats {
    pub total: i64,
    pub by_status: Vec<(String, i64)>,
    pub overdue: i64,
    pub due_today: i64,
    pub assigned_to_me: i64,
}

#[derive(Debug, Clone)]
pub struct StageTotals {
    pub stage: Stage,
    pub count: i64,
    pub total_amount: BigDecimal,
    pub weighted_amount: BigDecimal,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub stages: Vec<StageTotals>,
    pub count: i64,
    pub total_amount: BigDecimal,
    pub weighted_amount: BigDecimal,
}

#[derive(Debug, Clone)]
pub struct ForecastMonth {
    /// The first day of the month.
    pub month: NaiveDate,
    pub count: i64,
    pub weighted_amount: BigDecimal,
}

#[derive(QueryableByName)]
struct KeyCount {
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The rows a statistic covers: scope plus filter (and `extra`), no paging.
fn base<R: Listable>(
    viewer: &Viewer,
    covered: &Covered<R::Field>,
    extra: Option<Predicate<R::Field>>,
) -> Sql
where
    R::Field: Clone,
{
    let filter = match (covered.filter.clone(), extra) {
        (Some(f), Some(e)) => Some(Predicate::All(vec![f, e])),
        (f, e) => f.or(e),
    };
    let query = ListQuery {
        filter,
        search: None,
        ordering: Ordering { keys: Vec::new() },
        page: PageArgs::default(),
        deleted: covered.deleted,
        count: false,
    };
    conditions::<R>(viewer, &query)
}

async fn count_where<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    covered: &Covered<R::Field>,
    extra: Option<Predicate<R::Field>>,
) -> AppResult<i64>
where
    R::Field: Clone,
{
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!("SELECT count(*) AS count FROM {table} WHERE "));
    sql.append(base::<R>(viewer, covered, extra));
    let row: Count = sql.into_query().get_result(conn).await?;
    Ok(row.count)
}

/// Counts per value of `column` (a whitelisted column of R's table), largest first.
async fn count_by<R: Listable>(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    covered: &Covered<R::Field>,
    column: &'static str,
) -> AppResult<Vec<(String, i64)>>
where
    R::Field: Clone,
{
    let table = R::TABLE.name;
    let mut sql = Sql::new(&format!(
        "SELECT {table}.{column} AS key, count(*) AS count FROM {table} WHERE "
    ));
    sql.append(base::<R>(viewer, covered, None)).push(&format!(
        " GROUP BY {table}.{column} ORDER BY count DESC, key"
    ));
    let rows: Vec<KeyCount> = sql.into_query().load(conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.key.map(|k| (k, r.count)))
        .collect())
}

impl CrmService {
    pub async fn lead_stats(
        &self,
        viewer: &Viewer,
        covered: Covered<LeadField>,
    ) -> AppResult<LeadStats> {
        let mut conn = self.db.get().await?;
        let conn = &mut *conn;
        #[derive(QueryableByName)]
        struct Totals {
            #[diesel(sql_type = BigInt)]
            total: i64,
            #[diesel(sql_type = Nullable<Numeric>)]
            average: Option<BigDecimal>,
            #[diesel(sql_type = BigInt)]
            hot: i64,
        }
        let mut sql = Sql::new("SELECT count(*) AS total, round(avg(leads.score), 1) AS average, count(*) FILTER (WHERE leads.score >= ");
        sql.bind(Bind::Int(HOT_SCORE))
            .push(") AS hot FROM leads WHERE ");
        sql.append(base::<Lead>(viewer, &covered, None));
        let totals: Totals = sql.into_query().get_result(conn).await?;
        Ok(LeadStats {
            total: totals.total,
            by_status: count_by::<Lead>(conn, viewer, &covered, "status").await?,
            by_priority: count_by::<Lead>(conn, viewer, &covered, "priority").await?,
            by_source: count_by::<Lead>(conn, viewer, &covered, "lead_source").await?,
            assigned_to_me: count_where::<Lead>(
                conn,
                viewer,
                &covered,
                Some(is_me(LeadField::AssignedToId, viewer, true)),
            )
            .await?,
            average_score: totals.average,
            hot: totals.hot,
        })
    }

    pub async fn contact_stats(
        &self,
        viewer: &Viewer,
        covered: Covered<ContactField>,
    ) -> AppResult<ContactStats> {
        let mut conn = self.db.get().await?;
        let conn = &mut *conn;
        Ok(ContactStats {
            total: count_where::<Contact>(conn, viewer, &covered, None).await?,
            by_type: count_by::<Contact>(conn, viewer, &covered, "contact_type").await?,
            by_status: count_by::<Contact>(conn, viewer, &covered, "status").await?,
        })
    }

    pub async fn task_stats(
        &self,
        viewer: &Viewer,
        covered: Covered<TaskField>,
    ) -> AppResult<TaskStats> {
        let mut conn = self.db.get().await?;
        let conn = &mut *conn;
        let now = Utc::now();
        Ok(TaskStats {
            total: count_where::<Task>(conn, viewer, &covered, None).await?,
            by_status: count_by::<Task>(conn, viewer, &covered, "status").await?,
            overdue: count_where::<Task>(conn, viewer, &covered, Some(overdue(now))).await?,
            due_today: count_where::<Task>(conn, viewer, &covered, Some(due_today(now))).await?,
            assigned_to_me: count_where::<Task>(
                conn,
                viewer,
                &covered,
                Some(is_me(TaskField::AssignedToId, viewer, true)),
            )
            .await?,
        })
    }

    /// Count, total and probability-weighted amount per stage, in pipeline order, plus totals.
    /// Amounts are summed as numbers whatever their currency.
    pub async fn opportunity_pipeline(
        &self,
        viewer: &Viewer,
        covered: Covered<OpportunityField>,
    ) -> AppResult<Pipeline> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            stage: String,
            #[diesel(sql_type = BigInt)]
            count: i64,
            #[diesel(sql_type = Numeric)]
            total: BigDecimal,
            #[diesel(sql_type = Numeric)]
            weighted: BigDecimal,
        }
        let mut sql = Sql::new(
            "SELECT opportunities.stage AS stage, count(*) AS count, \
             COALESCE(sum(opportunities.amount), 0) AS total, \
             COALESCE(round(sum(opportunities.amount * opportunities.probability / 100.0), 2), 0) AS weighted \
             FROM opportunities WHERE ",
        );
        sql.append(base::<Opportunity>(viewer, &covered, None))
            .push(" GROUP BY opportunities.stage");
        let mut conn = self.db.get().await?;
        let rows: Vec<Row> = sql.into_query().load(&mut conn).await?;
        let stages: Vec<StageTotals> = Stage::ALL
            .iter()
            .map(|stage| {
                let row = rows.iter().find(|r| r.stage == stage.as_str());
                StageTotals {
                    stage: *stage,
                    count: row.map_or(0, |r| r.count),
                    total_amount: row.map_or_else(|| BigDecimal::from(0), |r| r.total.clone()),
                    weighted_amount: row
                        .map_or_else(|| BigDecimal::from(0), |r| r.weighted.clone()),
                }
            })
            .collect();
        Ok(Pipeline {
            count: stages.iter().map(|s| s.count).sum(),
            total_amount: stages.iter().map(|s| s.total_amount.clone()).sum(),
            weighted_amount: stages.iter().map(|s| s.weighted_amount.clone()).sum(),
            stages,
        })
    }

    /// Weighted amount of open opportunities by expected close month, for `months` months
    /// from the current one (months without any come back as zero).
    pub async fn opportunity_forecast(
        &self,
        viewer: &Viewer,
        months: i32,
        covered: Covered<OpportunityField>,
    ) -> AppResult<Vec<ForecastMonth>> {
        if !(1..=36).contains(&months) {
            return Err(AppError::bad_input(
                "months",
                "months must be between 1 and 36",
            ));
        }
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Date)]
            month: NaiveDate,
            #[diesel(sql_type = BigInt)]
            count: i64,
            #[diesel(sql_type = Numeric)]
            weighted: BigDecimal,
        }
        let today = Utc::now().date_naive();
        let start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap_or(today);
        let end = start
            .checked_add_months(chrono::Months::new(months as u32))
            .unwrap_or(start);
        let mut sql = Sql::new(
            "SELECT date_trunc('month', opportunities.expected_close_date)::date AS month, count(*) AS count, \
             COALESCE(round(sum(opportunities.amount * opportunities.probability / 100.0), 2), 0) AS weighted \
             FROM opportunities WHERE ",
        );
        sql.append(base::<Opportunity>(viewer, &covered, None))
            .push(" AND opportunities.stage NOT IN ('closed_won', 'closed_lost') AND opportunities.expected_close_date >= ")
            .bind(Bind::Date(start))
            .push(" AND opportunities.expected_close_date < ")
            .bind(Bind::Date(end))
            .push(" GROUP BY 1 ORDER BY 1");
        let mut conn = self.db.get().await?;
        let rows: Vec<Row> = sql.into_query().load(&mut conn).await?;
        Ok((0..months as u32)
            .filter_map(|i| start.checked_add_months(chrono::Months::new(i)))
            .map(|month| {
                let row = rows.iter().find(|r| r.month == month);
                ForecastMonth {
                    month,
                    count: row.map_or(0, |r| r.count),
                    weighted_amount: row
                        .map_or_else(|| BigDecimal::from(0), |r| r.weighted.clone()),
                }
            })
            .collect())
    }
}
