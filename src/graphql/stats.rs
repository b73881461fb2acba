//! Statistics over GraphQL. Each takes the same filter as its list, and counts only what the
//! caller may see.

use async_graphql::{Context, Object, OutputType, SimpleObject};

use super::contacts::{ContactFilter, ContactStatusValue, ContactTypeValue};
use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::filters::{covered, Date, Decimal};
use super::leads::{LeadFilter, LeadSourceValue, LeadStatusValue, PriorityValue};
use super::opportunities::{OpportunityFilter, StageValue};
use super::tasks::{TaskFilter, TaskStatusValue};
use crate::crm::contacts::{ContactStatus, ContactType};
use crate::crm::leads::{LeadSource, LeadStatus};

use crate::crm::tasks::TaskStatus;
use crate::crm::Priority;

/// How many records have a value.
#[derive(SimpleObject)]
#[graphql(concrete(name = "LeadStatusCount", params(LeadStatusValue)))]
#[graphql(concrete(name = "PriorityCount", params(PriorityValue)))]
#[graphql(concrete(name = "LeadSourceCount", params(LeadSourceValue)))]
#[graphql(concrete(name = "ContactTypeCount", params(ContactTypeValue)))]
#[graphql(concrete(name = "ContactStatusCount", params(ContactStatusValue)))]
#[graphql(concrete(name = "TaskStatusCount", params(TaskStatusValue)))]
pub struct ValueCount<T: OutputType> {
    /// The value.
    pub value: T,
    /// Records with it.
    pub count: i64,
}

/// Typed counts from the stored texts (a text no enum knows is skipped).
fn counts<D, T: OutputType + From<D>>(
    rows: Vec<(String, i64)>,
    parse: fn(&str) -> Option<D>,
) -> Vec<ValueCount<T>> {
    rows.into_iter()
        .filter_map(|(key, count)| {
            parse(&key).map(|v| ValueCount {
                value: T::from(v),
                count,
            })
        })
        .collect()
}

/// Lead statistics.
#[derive(SimpleObject)]
pub struct LeadStats {
    /// Leads matching the filter.
    pub total: i64,
    /// Per status, largest first.
    pub by_status: Vec<ValueCount<LeadStatusValue>>,
    /// Per priority, largest first.
    pub by_priority: Vec<ValueCount<PriorityValue>>,
    /// Per source, largest first (leads without one are not listed).
    pub by_source: Vec<ValueCount<LeadSourceValue>>,
    /// Of them, assigned to you.
    pub assigned_to_me: i64,
    /// Average score of the scored ones.
    pub average_score: Option<Decimal>,
    /// Scored 70 or more.
    pub hot: i64,
}

/// Contact statistics.
#[derive(SimpleObject)]
pub struct ContactStats {
    /// Contacts matching the filter.
    pub total: i64,
    /// Per relationship, largest first.
    pub by_type: Vec<ValueCount<ContactTypeValue>>,
    /// Per status, largest first.
    pub by_status: Vec<ValueCount<ContactStatusValue>>,
}

/// Task statistics.
#[derive(SimpleObject)]
pub struct TaskStats {
    /// Tasks matching the filter.
    pub total: i64,
    /// Per status, largest first.
    pub by_status: Vec<ValueCount<TaskStatusValue>>,
    /// Open and past due.
    pub overdue: i64,
    /// Due today (UTC).
    pub due_today: i64,
    /// Assigned to you.
    pub assigned_to_me: i64,
}

/// One stage of the pipeline.
#[derive(SimpleObject)]
pub struct PipelineStage {
    /// The stage.
    pub stage: StageValue,
    /// Opportunities in it.
    pub count: i64,
    /// Sum of their amounts.
    pub total_amount: Decimal,
    /// Sum of amount × probability.
    pub weighted_amount: Decimal,
}

/// The pipeline: every stage in order, and totals. Amounts of different currencies are added
/// as plain numbers.
#[derive(SimpleObject)]
pub struct Pipeline {
    /// Every stage, in pipeline order (empty ones included).
    pub stages: Vec<PipelineStage>,
    /// Opportunities in all stages.
    pub count: i64,
    /// Sum of all amounts.
    pub total_amount: Decimal,
    /// Sum of amount × probability.
    pub weighted_amount: Decimal,
}

/// Expected revenue of one month.
#[derive(SimpleObject)]
pub struct ForecastMonth {
    /// The first day of the month.
    pub month: Date,
    /// Open opportunities expected to close in it.
    pub count: i64,
    /// Their amount × probability.
    pub weighted_amount: Decimal,
}

#[derive(Default)]
pub struct StatsQuery;

#[Object]
impl StatsQuery {
    /// Lead statistics over the leads you may see that match `filter`.
    async fn lead_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the leads counted.")] filter: Option<LeadFilter>,
    ) -> async_graphql::Result<LeadStats> {
        let viewer = viewer(ctx)?;
        let filter = covered(viewer, filter).gql()?;
        let s = app(ctx).crm.lead_stats(viewer, filter).await.gql()?;
        Ok(LeadStats {
            total: s.total,
            by_status: counts(s.by_status, LeadStatus::parse),
            by_priority: counts(s.by_priority, Priority::parse),
            by_source: counts(s.by_source, LeadSource::parse),
            assigned_to_me: s.assigned_to_me,
            average_score: s.average_score.map(Decimal),
            hot: s.hot,
        })
    }

    /// Contact statistics over the contacts you may see that match `filter`.
    async fn contact_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the contacts counted.")] filter: Option<ContactFilter>,
    ) -> async_graphql::Result<ContactStats> {
        let viewer = viewer(ctx)?;
        let filter = covered(viewer, filter).gql()?;
        let s = app(ctx).crm.contact_stats(viewer, filter).await.gql()?;
        Ok(ContactStats {
            total: s.total,
            by_type: counts(s.by_type, ContactType::parse),
            by_status: counts(s.by_status, ContactStatus::parse),
        })
    }

    /// Task statistics over the tasks you may see that match `filter`.
    async fn task_stats(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the tasks counted.")] filter: Option<TaskFilter>,
    ) -> async_graphql::Result<TaskStats> {
        let viewer = viewer(ctx)?;
        let filter = covered(viewer, filter).gql()?;
        let s = app(ctx).crm.task_stats(viewer, filter).await.gql()?;
        Ok(TaskStats {
            total: s.total,
            by_status: counts(s.by_status, TaskStatus::parse),
            overdue: s.overdue,
            due_today: s.due_today,
            assigned_to_me: s.assigned_to_me,
        })
    }

    /// Count, amount and weighted amount per pipeline stage, over the opportunities you may
    /// see that match `filter`.
    async fn opportunity_pipeline(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Narrow the opportunities counted.")] filter: Option<OpportunityFilter>,
    ) -> async_graphql::Result<Pipeline> {
        let viewer = viewer(ctx)?;
        let filter = covered(viewer, filter).gql()?;
        let p = app(ctx)
            .crm
            .opportunity_pipeline(viewer, filter)
            .await
            .gql()?;
        Ok(Pipeline {
            stages: p
                .stages
                .into_iter()
                .map(|s| PipelineStage {
                    stage: s.stage.into(),
                    count: s.count,
                    total_amount: Decimal(s.total_amount),
                    weighted_amount: Decimal(s.weighted_amount),
                })
                .collect(),
            count: p.count,
            total_amount: Decimal(p.total_amount),
            weighted_amount: Decimal(p.weighted_amount),
        })
    }

    /// Weighted amount of open opportunities per expected close month, from this month on.
    async fn opportunity_forecast(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "How many months (1-36).", default = 6)] months: i32,
        #[graphql(desc = "Narrow the opportunities counted.")] filter: Option<OpportunityFilter>,
    ) -> async_graphql::Result<Vec<ForecastMonth>> {
        let viewer = viewer(ctx)?;
        let filter = covered(viewer, filter).gql()?;
        let months = app(ctx)
            .crm
            .opportunity_forecast(viewer, months, filter)
            .await
            .gql()?;
        Ok(months
            .into_iter()
            .map(|m| ForecastMonth {
                month: Date(m.month),
                count: m.count,
                weighted_amount: Decimal(m.weighted_amount),
            })
            .collect())
    }
}
