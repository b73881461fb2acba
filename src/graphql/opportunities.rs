//! Opportunities over GraphQL: the `Opportunity` type, `opportunity`/`opportunities`, and
//! create, update, delete, restore.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, ID};
use chrono::{DateTime, Utc};

use super::companies::Company;
use super::connection::connection_types;
use super::contacts::Contact;
use super::context::linked;
use super::filters::{
    combine, is_me, maybe, CustomFieldFilter, Date, DateFilter, DateTimeFilter, Decimal,
    DecimalFilter, EntityFilter, EnumFilter, IdFilter, IntFilter, StoredAs, StringFilter,
};
use super::ids::{parse_id, to_id};
use super::leads::load_user;
use super::prefetch;
use super::record_api::record_api;
use super::users::User;
use crate::auth::{UserId, Viewer};
use crate::crm::activities::RecordRef;
use crate::crm::companies::CompanyId;
use crate::crm::contacts::ContactId;
use crate::crm::opportunities::{self as domain, OpportunityField, OpportunitySort};
use crate::crm::query::{Predicate, Target};
use crate::error::AppResult;

/// Where a deal stands in the pipeline.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Stage", remote = "crate::crm::opportunities::Stage")]
pub enum StageValue {
    /// First contact (default probability 10).
    Prospecting,
    /// Need and budget confirmed (20).
    Qualification,
    /// Proposal sent (50).
    Proposal,
    /// Terms under discussion (75).
    Negotiation,
    /// Won (100).
    ClosedWon,
    /// Lost (0).
    ClosedLost,
}

impl StoredAs for StageValue {
    fn stored(&self) -> &'static str {
        domain::Stage::from(*self).as_str()
    }
}

pub struct Opportunity(pub domain::Opportunity);

/// A deal in the pipeline.
#[Object]
impl Opportunity {
    /// Unique ID of the opportunity.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// Name of the deal.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// The buying company, when you may see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Company>> {
        Ok(linked(ctx, self.0.company_id.map(|c| c.0))
            .await?
            .map(Company))
    }
    /// The main contact, when you may see them.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        Ok(linked(ctx, self.0.contact_id.map(|c| c.0))
            .await?
            .map(Contact))
    }
    /// Pipeline stage.
    async fn stage(&self) -> StageValue {
        self.0.stage.into()
    }
    /// Probability of closing, 0-100 (the stage's default unless set).
    async fn probability(&self) -> i32 {
        i32::from(self.0.probability)
    }
    /// Deal amount.
    async fn amount(&self) -> Option<Decimal> {
        self.0.amount.clone().map(Decimal)
    }
    /// Currency of the amount (ISO 4217).
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    /// When the deal is expected to close.
    async fn expected_close_date(&self) -> Option<Date> {
        self.0.expected_close_date.map(Date)
    }
    /// When the deal closed (set when it reaches a closed stage).
    async fn actual_close_date(&self) -> Option<Date> {
        self.0.actual_close_date.map(Date)
    }
    /// Why the deal was lost.
    async fn lost_reason(&self) -> Option<&str> {
        self.0.lost_reason.as_deref()
    }
    /// The workspace's own fields, as a JSON object.
    async fn custom_fields(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.custom_fields.clone())
    }
    /// Labels.
    async fn tags(&self) -> Vec<String> {
        self.0.tag_list()
    }
    /// Who owns the deal.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.owner_id).await
    }
    /// Who works the deal.
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.assigned_to_id).await
    }
    /// Notes, calls, emails, meetings and comments on it, newest first (at most 50).
    async fn activities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::activities::Activity>> {
        super::activities::activities_of(
            ctx,
            crate::crm::activities::RecordRef::Opportunity(self.0.id.0),
        )
        .await
    }
    /// When the opportunity was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the opportunity was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the opportunity was deleted (it can be restored), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

connection_types!(OpportunityConnection, OpportunityEdge, Opportunity);

/// Narrows a list of opportunities. Every condition given must hold; combine with `and`,
/// `or`, `not`.
#[derive(InputObject, Default)]
pub struct OpportunityFilter {
    /// By ID.
    pub id: Option<IdFilter>,
    /// By name.
    pub name: Option<StringFilter>,
    /// By company.
    pub company_id: Option<IdFilter>,
    /// By contact.
    pub contact_id: Option<IdFilter>,
    /// By stage.
    pub stage: Option<EnumFilter<StageValue>>,
    /// By probability.
    pub probability: Option<IntFilter>,
    /// By amount.
    pub amount: Option<DecimalFilter>,
    /// By currency.
    pub currency: Option<StringFilter>,
    /// By expected close date.
    pub expected_close_date: Option<DateFilter>,
    /// By actual close date.
    pub actual_close_date: Option<DateFilter>,
    /// By owner.
    pub owner_id: Option<IdFilter>,
    /// By assignee.
    pub assigned_to_id: Option<IdFilter>,
    /// By creation time.
    pub created_at: Option<DateTimeFilter>,
    /// By last change.
    pub updated_at: Option<DateTimeFilter>,
    /// Opportunities carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// By custom fields.
    pub custom: Option<Vec<CustomFieldFilter>>,
    /// Only opportunities assigned to you (true) or not (false).
    pub assigned_to_me: Option<bool>,
    /// Only opportunities you own (true) or not (false).
    pub owned_by_me: Option<bool>,
    /// Include deleted opportunities (top level only).
    pub include_deleted: Option<bool>,
    /// All of these hold.
    pub and: Option<Vec<OpportunityFilter>>,
    /// At least one of these holds.
    pub or: Option<Vec<OpportunityFilter>>,
    /// This does not hold.
    pub not: Option<Box<OpportunityFilter>>,
}

impl EntityFilter for OpportunityFilter {
    type Field = OpportunityField;

    fn include_deleted(&self) -> bool {
        self.include_deleted == Some(true)
    }

    fn predicate(self, viewer: &Viewer) -> AppResult<Predicate<OpportunityField>> {
        use OpportunityField as F;
        let f = Target::Field;
        let mut all = Vec::new();
        macro_rules! checked {
            ($($name:ident => $field:expr, $label:literal;)*) => {
                $(if let Some(filter) = self.$name { all.extend(filter.predicates($label, f($field))?); })*
            };
        }
        checked! {
            id => F::Id, "id";
            name => F::Name, "name";
            company_id => F::CompanyId, "companyId";
            contact_id => F::ContactId, "contactId";
            probability => F::Probability, "probability";
            currency => F::Currency, "currency";
            owner_id => F::OwnerId, "ownerId";
            assigned_to_id => F::AssignedToId, "assignedToId";
            amount => F::Amount, "amount";
            expected_close_date => F::ExpectedCloseDate, "expectedCloseDate";
            actual_close_date => F::ActualCloseDate, "actualCloseDate";
            created_at => F::CreatedAt, "createdAt";
            updated_at => F::UpdatedAt, "updatedAt";
            stage => F::Stage, "stage";
        }
        if let Some(tags) = self.tags {
            all.push(Predicate::HasTags(tags));
        }
        for custom in self.custom.into_iter().flatten() {
            all.extend(custom.predicates()?);
        }
        all.extend(is_me(F::AssignedToId, viewer, self.assigned_to_me));
        all.extend(is_me(F::OwnerId, viewer, self.owned_by_me));
        combine(&mut all, viewer, self.and, self.or, self.not)?;
        Ok(Predicate::All(all))
    }
}

/// What opportunities can be ordered by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::crm::opportunities::OpportunitySort")]
pub enum OpportunityOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name.
    Name,
    /// Amount.
    Amount,
    /// Expected close date.
    ExpectedCloseDate,
    /// Probability.
    Probability,
}

/// The writable fields of an opportunity. On update, omitted fields stay as they are and
/// `null` clears a field.
#[derive(InputObject, Default)]
pub struct OpportunityInput {
    /// Name (required when creating).
    pub name: Option<String>,
    /// Description.
    pub description: MaybeUndefined<String>,
    /// The buying company: one you may see.
    pub company_id: MaybeUndefined<ID>,
    /// The main contact: one you may see.
    pub contact_id: MaybeUndefined<ID>,
    /// Stage (default PROSPECTING). Closing sets actualCloseDate; reopening clears it.
    pub stage: Option<StageValue>,
    /// Probability 0-100; when omitted, the stage's default applies on create and on a stage
    /// change.
    pub probability: Option<i32>,
    /// Amount (not negative, at most 2 decimals).
    pub amount: MaybeUndefined<Decimal>,
    /// Currency, ISO 4217 (default USD).
    pub currency: Option<String>,
    /// Expected close date.
    pub expected_close_date: MaybeUndefined<Date>,
    /// Why the deal was lost.
    pub lost_reason: MaybeUndefined<String>,
    /// Owner (default: you). Members may only own records themselves.
    pub owner_id: Option<ID>,
    /// Assignee: a user of your workspace.
    pub assigned_to_id: MaybeUndefined<ID>,
    /// The workspace's own fields, as a JSON object (replaces the whole object).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (replaces the whole list).
    pub tags: Option<Vec<String>>,
}

impl OpportunityInput {
    fn into_domain(self) -> AppResult<domain::OpportunityInput> {
        let user =
            |field: &str, id: Option<ID>| id.map(|i| parse_id(field, &i).map(UserId)).transpose();
        Ok(domain::OpportunityInput {
            name: self.name,
            description: maybe(self.description),
            company_id: maybe(self.company_id)
                .map(|v| {
                    v.map(|i| parse_id("companyId", &i).map(CompanyId))
                        .transpose()
                })
                .transpose()?,
            contact_id: maybe(self.contact_id)
                .map(|v| {
                    v.map(|i| parse_id("contactId", &i).map(ContactId))
                        .transpose()
                })
                .transpose()?,
            stage: self.stage.map(Into::into),
            probability: self.probability,
            amount: maybe(self.amount).map(|v| v.map(|d| d.0)),
            currency: self.currency,
            expected_close_date: maybe(self.expected_close_date).map(|v| v.map(|d| d.0)),
            actual_close_date: None,
            lost_reason: maybe(self.lost_reason),
            owner_id: user("ownerId", self.owner_id)?,
            assigned_to_id: maybe(self.assigned_to_id)
                .map(|v| user("assignedToId", v))
                .transpose()?,
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

impl Opportunity {
    /// Loads the relations a list page's rows select, one query each (see `prefetch`).
    pub(crate) async fn prefetch(
        ctx: &Context<'_>,
        rows: &[&domain::Opportunity],
    ) -> async_graphql::Result<()> {
        let rows = || rows.iter();
        futures_util::try_join!(
            prefetch::users(ctx, "owner", rows().map(|r| r.owner_id).collect()),
            prefetch::users(
                ctx,
                "assignedTo",
                rows().map(|r| r.assigned_to_id).collect()
            ),
            prefetch::records::<crate::crm::companies::Company>(
                ctx,
                "company",
                rows().map(|r| r.company_id.map(|c| c.0)).collect(),
            ),
            prefetch::records::<crate::crm::contacts::Contact>(
                ctx,
                "contact",
                rows().map(|r| r.contact_id.map(|c| c.0)).collect(),
            ),
            prefetch::activities(
                ctx,
                rows().map(|r| RecordRef::Opportunity(r.id.0)).collect()
            ),
        )?;
        Ok(())
    }
}

record_api!(
    object: Opportunity, domain: crate::crm::opportunities::Opportunity, what: "opportunity",
    filter: OpportunityFilter, order: OpportunityOrderField, default_sort: OpportunitySort::CreatedAt, input: OpportunityInput,
    connection: OpportunityConnection, payload: OpportunityPayload { opportunity },
    query: OpportunityQuery {
        opportunity: "An opportunity you may see (deleted ones included).",
        opportunities: "The opportunities you may see. Newest first unless `orderBy` says otherwise.",
        search: "Text to find in the name.",
    },
    mutation: OpportunityMutation {
        create_opportunity: "Creates an opportunity.",
        update_opportunity,
        delete_opportunity,
        restore_opportunity,
        bulk_update_opportunities,
        bulk_delete_opportunities,
    },
    service: { create_opportunity },
);
