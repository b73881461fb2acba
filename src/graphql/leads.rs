//! Leads over GraphQL: the `Lead` type, `lead`/`leads`, and create, update, delete, restore.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::connection::connection_types;
use super::context::{app, linked, viewer};
use super::errors::GqlResultExt;
use super::filters::{
    combine, is_me, maybe, CustomFieldFilter, DateTimeFilter, Decimal, DecimalFilter, EntityFilter,
    EnumFilter, IdFilter, IntFilter, StoredAs, StringFilter,
};
use super::ids::{parse_id, to_id};
use super::loaders::UserLoader;
use super::prefetch;
use super::record_api::record_api;
use super::users::User;
use crate::auth::{UserId, Viewer};
use crate::crm::activities::RecordRef;
use crate::crm::leads::{self as domain, LeadField, LeadId, LeadSort};
use crate::crm::query::{Predicate, Target};
use crate::crm::Priority;
use crate::error::AppResult;

/// Where a lead came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "LeadSource", remote = "crate::crm::leads::LeadSource")]
pub enum LeadSourceValue {
    /// The website (forms, chat).
    Website,
    /// Recommended by someone.
    Referral,
    /// Social networks.
    SocialMedia,
    /// An email campaign.
    EmailCampaign,
    /// Outbound cold call.
    ColdCall,
    /// A trade show.
    TradeShow,
    /// Paid advertising.
    Advertisement,
    /// An event (webinar, meetup).
    Event,
    /// Anything else.
    Other,
}

/// Where a lead stands.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "LeadStatus", remote = "crate::crm::leads::LeadStatus")]
pub enum LeadStatusValue {
    /// Not yet contacted.
    New,
    /// Contacted, no verdict yet.
    Contacted,
    /// A real prospect.
    Qualified,
    /// Not a prospect.
    Unqualified,
    /// Became a contact (and maybe an opportunity).
    Converted,
    /// Gone.
    Lost,
}

/// How urgent a record is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "Priority", remote = "crate::crm::Priority")]
pub enum PriorityValue {
    /// Whenever there is time.
    Low,
    /// The default.
    Medium,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

impl StoredAs for LeadSourceValue {
    fn stored(&self) -> &'static str {
        domain::LeadSource::from(*self).as_str()
    }
}

impl StoredAs for LeadStatusValue {
    fn stored(&self) -> &'static str {
        domain::LeadStatus::from(*self).as_str()
    }
}

impl StoredAs for PriorityValue {
    fn stored(&self) -> &'static str {
        Priority::from(*self).as_str()
    }
}

pub struct Lead(pub domain::Lead);

/// A person or company who might buy.
#[Object]
impl Lead {
    /// Unique ID of the lead.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// First name.
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }
    /// Last name.
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    /// Email address (lower-cased).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// Phone number.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// The company the lead works for, as typed.
    async fn company_name(&self) -> Option<&str> {
        self.0.company_name.as_deref()
    }
    /// Job title.
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }
    /// Industry.
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// Employees of the lead's company.
    async fn company_size(&self) -> Option<i32> {
        self.0.company_size
    }
    /// Country.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    /// State or region.
    async fn state(&self) -> Option<&str> {
        self.0.state.as_deref()
    }
    /// City.
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    /// Where the lead came from.
    async fn lead_source(&self) -> Option<LeadSourceValue> {
        self.0.lead_source.map(Into::into)
    }
    /// Where the lead stands.
    async fn status(&self) -> LeadStatusValue {
        self.0.status.into()
    }
    /// How urgent the lead is.
    async fn priority(&self) -> PriorityValue {
        self.0.priority.into()
    }
    /// Likelihood to convert, 0-100, once scored.
    async fn score(&self) -> Option<i32> {
        self.0.score.map(i32::from)
    }
    /// Why the lead has its score: each factor's contribution, largest first.
    async fn score_factors(&self) -> Vec<super::scoring::ScoreFactor> {
        super::scoring::factors_of(self.0.score_factors.as_ref())
    }
    /// When the score was computed.
    async fn scored_at(&self) -> Option<DateTime<Utc>> {
        self.0.scored_at
    }
    /// Which scorer produced the score: `model` or `rules`.
    async fn scorer(&self) -> Option<&str> {
        self.0.scorer.as_deref()
    }
    /// The model version that produced the score (for `model`).
    async fn score_model_version(&self) -> Option<i32> {
        self.0.score_model_version
    }
    /// Expected deal value.
    async fn estimated_value(&self) -> Option<Decimal> {
        self.0.estimated_value.clone().map(Decimal)
    }
    /// Probability of closing, 0-100, as judged by the team.
    async fn probability(&self) -> Option<i32> {
        self.0.probability.map(i32::from)
    }
    /// When someone last called, emailed or met the lead.
    async fn last_contacted_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_contacted_at
    }
    /// When to follow up next.
    async fn next_follow_up_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_follow_up_at
    }
    /// When the lead was converted.
    async fn converted_at(&self) -> Option<DateTime<Utc>> {
        self.0.converted_at
    }
    /// The contact the lead became, when converted and visible to you.
    async fn converted_contact(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::contacts::Contact>> {
        Ok(linked(ctx, self.0.converted_contact_id)
            .await?
            .map(super::contacts::Contact))
    }
    /// The company the lead became part of, when converted and visible to you.
    async fn converted_company(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::companies::Company>> {
        Ok(linked(ctx, self.0.converted_company_id)
            .await?
            .map(super::companies::Company))
    }
    /// The opportunity created at conversion, when visible to you.
    async fn converted_opportunity(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<super::opportunities::Opportunity>> {
        Ok(linked(ctx, self.0.converted_opportunity_id)
            .await?
            .map(super::opportunities::Opportunity))
    }
    /// Free-form notes.
    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }
    /// The workspace's own fields, as a JSON object.
    async fn custom_fields(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.0.custom_fields.clone())
    }
    /// Labels.
    async fn tags(&self) -> Vec<String> {
        self.0.tag_list()
    }
    /// Who owns the lead.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.owner_id).await
    }
    /// Who works on the lead.
    async fn assigned_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.assigned_to_id).await
    }
    /// Notes, calls, emails, meetings and comments on it, newest first (at most 50).
    async fn activities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::activities::Activity>> {
        super::activities::activities_of(ctx, crate::crm::activities::RecordRef::Lead(self.0.id.0))
            .await
    }
    /// When the lead was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the lead was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the lead was deleted (it can be restored), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

/// A user referenced by a record, batched per request.
pub async fn load_user(
    ctx: &Context<'_>,
    id: Option<UserId>,
) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(super::context::loader::<UserLoader>(ctx)
        .load_one(id)
        .await?
        .map(User))
}

connection_types!(LeadConnection, LeadEdge, Lead);

/// Narrows a list of leads. Every condition given must hold; combine with `and`, `or`, `not`.
#[derive(InputObject, Default)]
pub struct LeadFilter {
    /// By ID.
    pub id: Option<IdFilter>,
    /// By first name.
    pub first_name: Option<StringFilter>,
    /// By last name.
    pub last_name: Option<StringFilter>,
    /// By email.
    pub email: Option<StringFilter>,
    /// By phone.
    pub phone: Option<StringFilter>,
    /// By company name.
    pub company_name: Option<StringFilter>,
    /// By job title.
    pub job_title: Option<StringFilter>,
    /// By industry.
    pub industry: Option<StringFilter>,
    /// By company size.
    pub company_size: Option<IntFilter>,
    /// By country.
    pub country: Option<StringFilter>,
    /// By state.
    pub state: Option<StringFilter>,
    /// By city.
    pub city: Option<StringFilter>,
    /// By source.
    pub lead_source: Option<EnumFilter<LeadSourceValue>>,
    /// By status.
    pub status: Option<EnumFilter<LeadStatusValue>>,
    /// By priority.
    pub priority: Option<EnumFilter<PriorityValue>>,
    /// By owner.
    pub owner_id: Option<IdFilter>,
    /// By assignee.
    pub assigned_to_id: Option<IdFilter>,
    /// By score.
    pub score: Option<IntFilter>,
    /// By estimated value.
    pub estimated_value: Option<DecimalFilter>,
    /// By probability.
    pub probability: Option<IntFilter>,
    /// By last contact.
    pub last_contacted_at: Option<DateTimeFilter>,
    /// By next follow-up.
    pub next_follow_up_at: Option<DateTimeFilter>,
    /// By conversion time.
    pub converted_at: Option<DateTimeFilter>,
    /// By creation time.
    pub created_at: Option<DateTimeFilter>,
    /// By last change.
    pub updated_at: Option<DateTimeFilter>,
    /// Leads carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// By custom fields.
    pub custom: Option<Vec<CustomFieldFilter>>,
    /// Only leads assigned to you (true) or not (false).
    pub assigned_to_me: Option<bool>,
    /// Only leads you own (true) or not (false).
    pub owned_by_me: Option<bool>,
    /// Include deleted leads (top level only).
    pub include_deleted: Option<bool>,
    /// All of these hold.
    pub and: Option<Vec<LeadFilter>>,
    /// At least one of these holds.
    pub or: Option<Vec<LeadFilter>>,
    /// This does not hold.
    pub not: Option<Box<LeadFilter>>,
}

type LeadPredicate = Predicate<LeadField>;

impl EntityFilter for LeadFilter {
    type Field = LeadField;

    fn include_deleted(&self) -> bool {
        self.include_deleted == Some(true)
    }

    fn predicate(self, viewer: &Viewer) -> AppResult<LeadPredicate> {
        use LeadField as F;
        let mut all: Vec<LeadPredicate> = Vec::new();
        let f = |field: F| Target::Field(field);
        macro_rules! checked {
            ($($name:ident => $field:expr, $label:literal;)*) => {
                $(if let Some(filter) = self.$name { all.extend(filter.predicates($label, f($field))?); })*
            };
        }
        checked! {
            first_name => F::FirstName, "firstName";
            last_name => F::LastName, "lastName";
            email => F::Email, "email";
            phone => F::Phone, "phone";
            company_name => F::CompanyName, "companyName";
            job_title => F::JobTitle, "jobTitle";
            industry => F::Industry, "industry";
            country => F::Country, "country";
            state => F::State, "state";
            city => F::City, "city";
            company_size => F::CompanySize, "companySize";
            score => F::Score, "score";
            probability => F::Probability, "probability";
            id => F::Id, "id";
            owner_id => F::OwnerId, "ownerId";
            assigned_to_id => F::AssignedToId, "assignedToId";
            estimated_value => F::EstimatedValue, "estimatedValue";
            last_contacted_at => F::LastContactedAt, "lastContactedAt";
            next_follow_up_at => F::NextFollowUpAt, "nextFollowUpAt";
            converted_at => F::ConvertedAt, "convertedAt";
            created_at => F::CreatedAt, "createdAt";
            updated_at => F::UpdatedAt, "updatedAt";
            lead_source => F::LeadSource, "leadSource";
            status => F::Status, "status";
            priority => F::Priority, "priority";
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

/// What leads can be ordered by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::crm::leads::LeadSort")]
pub enum LeadOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// First name.
    FirstName,
    /// Last name.
    LastName,
    /// Company name.
    CompanyName,
    /// Score.
    Score,
    /// Estimated value.
    EstimatedValue,
    /// Priority (low < medium < high < urgent).
    Priority,
}

/// The writable fields of a lead. On update, omitted fields stay as they are and `null`
/// clears a field.
#[derive(InputObject, Default)]
pub struct LeadInput {
    /// First name.
    pub first_name: MaybeUndefined<String>,
    /// Last name.
    pub last_name: MaybeUndefined<String>,
    /// Email address.
    pub email: MaybeUndefined<String>,
    /// Phone number.
    pub phone: MaybeUndefined<String>,
    /// Company name.
    pub company_name: MaybeUndefined<String>,
    /// Job title.
    pub job_title: MaybeUndefined<String>,
    /// Industry.
    pub industry: MaybeUndefined<String>,
    /// Employees of the lead's company (0 or more).
    pub company_size: MaybeUndefined<i32>,
    /// Country.
    pub country: MaybeUndefined<String>,
    /// State or region.
    pub state: MaybeUndefined<String>,
    /// City.
    pub city: MaybeUndefined<String>,
    /// Where the lead came from.
    pub lead_source: MaybeUndefined<LeadSourceValue>,
    /// Status (default NEW).
    pub status: Option<LeadStatusValue>,
    /// Priority (default MEDIUM).
    pub priority: Option<PriorityValue>,
    /// Owner (default: you). Members may only own records themselves.
    pub owner_id: Option<ID>,
    /// Assignee: a user of your workspace.
    pub assigned_to_id: MaybeUndefined<ID>,
    /// Expected deal value (not negative).
    pub estimated_value: MaybeUndefined<Decimal>,
    /// Probability of closing, 0-100.
    pub probability: MaybeUndefined<i32>,
    /// When to follow up next.
    pub next_follow_up_at: MaybeUndefined<DateTime<Utc>>,
    /// Free-form notes.
    pub notes: MaybeUndefined<String>,
    /// The workspace's own fields, as a JSON object (replaces the whole object).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (replaces the whole list).
    pub tags: Option<Vec<String>>,
}

impl LeadInput {
    fn into_domain(self) -> AppResult<domain::LeadInput> {
        let user =
            |field: &str, id: Option<ID>| id.map(|i| parse_id(field, &i).map(UserId)).transpose();
        Ok(domain::LeadInput {
            first_name: maybe(self.first_name),
            last_name: maybe(self.last_name),
            email: maybe(self.email),
            phone: maybe(self.phone),
            company_name: maybe(self.company_name),
            job_title: maybe(self.job_title),
            industry: maybe(self.industry),
            company_size: maybe(self.company_size),
            country: maybe(self.country),
            state: maybe(self.state),
            city: maybe(self.city),
            lead_source: maybe(self.lead_source).map(|v| v.map(Into::into)),
            status: self.status.map(Into::into),
            priority: self.priority.map(Into::into),
            owner_id: user("ownerId", self.owner_id)?,
            assigned_to_id: maybe(self.assigned_to_id)
                .map(|v| user("assignedToId", v))
                .transpose()?,
            estimated_value: maybe(self.estimated_value).map(|v| v.map(|d| d.0)),
            probability: maybe(self.probability),
            next_follow_up_at: maybe(self.next_follow_up_at),
            last_contacted_at: None,
            notes: maybe(self.notes),
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

/// Options of `convertLead`.
#[derive(InputObject, Default)]
pub struct ConvertLeadInput {
    /// Create an opportunity (default: when the lead has an estimated value).
    pub create_opportunity: Option<bool>,
    /// Name of the opportunity (default: "<company> deal").
    pub opportunity_name: Option<String>,
    /// Amount of the opportunity (default: the lead's estimated value).
    pub amount: Option<Decimal>,
    /// Expected close date of the opportunity.
    pub expected_close_date: Option<super::filters::Date>,
    /// Attach to this company instead of finding (by name) or creating one.
    pub company_id: Option<ID>,
    /// Use this contact instead of finding (by email) or creating one.
    pub contact_id: Option<ID>,
}

/// What `convertLead` produced.
#[derive(SimpleObject)]
pub struct ConvertLeadPayload {
    /// The lead, now converted and linked to what it became.
    pub lead: Lead,
    /// The contact (new, or the existing one with the lead's email).
    pub contact: super::contacts::Contact,
    /// The company (new, the existing one of the same name, or the one given).
    pub company: Option<super::companies::Company>,
    /// The opportunity, when one was created.
    pub opportunity: Option<super::opportunities::Opportunity>,
}

impl Lead {
    /// Loads the relations a list page's rows select, one query each (see `prefetch`).
    pub(crate) async fn prefetch(
        ctx: &Context<'_>,
        rows: &[&crate::crm::leads::Lead],
    ) -> async_graphql::Result<()> {
        let rows = || rows.iter();
        futures_util::try_join!(
            prefetch::users(ctx, "owner", rows().map(|r| r.owner_id).collect()),
            prefetch::users(
                ctx,
                "assignedTo",
                rows().map(|r| r.assigned_to_id).collect()
            ),
            prefetch::records::<crate::crm::contacts::Contact>(
                ctx,
                "convertedContact",
                rows().map(|r| r.converted_contact_id).collect(),
            ),
            prefetch::records::<crate::crm::companies::Company>(
                ctx,
                "convertedCompany",
                rows().map(|r| r.converted_company_id).collect(),
            ),
            prefetch::records::<crate::crm::opportunities::Opportunity>(
                ctx,
                "convertedOpportunity",
                rows().map(|r| r.converted_opportunity_id).collect(),
            ),
            prefetch::activities(ctx, rows().map(|r| RecordRef::Lead(r.id.0)).collect()),
        )?;
        Ok(())
    }
}

record_api!(
    object: Lead, domain: crate::crm::leads::Lead, what: "lead",
    filter: LeadFilter, order: LeadOrderField, default_sort: LeadSort::CreatedAt, input: LeadInput,
    connection: LeadConnection, payload: LeadPayload { lead },
    query: LeadQuery {
        lead: "A lead you may see (deleted ones included).",
        leads: "The leads you may see: members their own and assigned ones, managers and admins all of the workspace. Newest first unless `orderBy` says otherwise.",
        search: "Text to find in names, email, company and phone.",
    },
    mutation: LeadMutation {
        create_lead: "Creates a lead. It needs a first or last name, an email or a company name.",
        update_lead,
        delete_lead,
        restore_lead,
        bulk_update_leads,
        bulk_delete_leads,
    },
    service: { create_lead },
);

/// Lead mutations beyond the shared record ones.
#[derive(Default)]
pub struct LeadActions;

#[Object]
impl LeadActions {
    /// Converts a lead in one transaction: reuses the contact with the lead's email (filling
    /// only its empty fields) or creates one; reuses the company with the lead's company name
    /// or creates it (or takes `companyId`); creates an opportunity when asked or when the lead
    /// has an estimated value; marks the lead converted. Converting twice is a CONFLICT.
    async fn convert_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead's ID.")] id: ID,
        #[graphql(desc = "Conversion options.")] input: Option<ConvertLeadInput>,
    ) -> async_graphql::Result<ConvertLeadPayload> {
        let viewer = viewer(ctx)?;
        let id = LeadId(parse_id("id", &id).gql()?);
        let input = input.unwrap_or_default();
        let options = (|| -> AppResult<crate::crm::conversion::ConvertLead> {
            Ok(crate::crm::conversion::ConvertLead {
                create_opportunity: input.create_opportunity,
                opportunity_name: input.opportunity_name,
                amount: input.amount.map(|d| d.0),
                expected_close_date: input.expected_close_date.map(|d| d.0),
                company_id: input
                    .company_id
                    .map(|i| parse_id("companyId", &i).map(crate::crm::companies::CompanyId))
                    .transpose()?,
                contact_id: input
                    .contact_id
                    .map(|i| parse_id("contactId", &i).map(crate::crm::contacts::ContactId))
                    .transpose()?,
            })
        })()
        .gql()?;
        let done = app(ctx).crm.convert_lead(viewer, id, options).await.gql()?;
        Ok(ConvertLeadPayload {
            lead: Lead(done.lead),
            contact: super::contacts::Contact(done.contact),
            company: done.company.map(super::companies::Company),
            opportunity: done.opportunity.map(super::opportunities::Opportunity),
        })
    }
}
