//! Leads: people or companies who might buy. Reading goes through the shared list engine
//! (`query`), which applies the caller's scope; every write first finds the row through the
//! same scope, so an invisible lead is NOT_FOUND everywhere.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::{AsChangeset, Insertable, QueryableByName};
use diesel_async::AsyncPgConnection;

use super::edit::Editable;

use super::query::{CursorValue, Field, Listable, SortKey, Table};
use super::{check_owner_and_assignee, clearable_text as text, CrmService, Priority, Sort};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::leads;
use crate::error::{AppError, AppResult};
use crate::validation::{
    custom_fields, non_negative_decimal, non_negative_int, optional_email, percentage, tags,
};

crate::id_type!(
    /// A lead's ID.
    LeadId
);

crate::text_enum!(
    /// Where a lead came from.
    LeadSource {
        Website => "website",
        Referral => "referral",
        SocialMedia => "social_media",
        EmailCampaign => "email_campaign",
        ColdCall => "cold_call",
        TradeShow => "trade_show",
        Advertisement => "advertisement",
        Event => "event",
        Other => "other",
    }
);

crate::text_enum!(
    /// Where a lead stands.
    LeadStatus {
        New => "new",
        Contacted => "contacted",
        Qualified => "qualified",
        Unqualified => "unqualified",
        Converted => "converted",
        Lost => "lost",
    }
);

/// A lead as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = leads)]
pub struct Lead {
    pub id: LeadId,
    pub workspace_id: WorkspaceId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company_name: Option<String>,
    pub job_title: Option<String>,
    pub industry: Option<String>,
    pub company_size: Option<i32>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub lead_source: Option<LeadSource>,
    pub status: LeadStatus,
    pub priority: Priority,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<UserId>,
    pub score: Option<i16>,
    pub estimated_value: Option<BigDecimal>,
    pub probability: Option<i16>,
    pub last_contacted_at: Option<DateTime<Utc>>,
    pub next_follow_up_at: Option<DateTime<Utc>>,
    pub converted_at: Option<DateTime<Utc>>,
    pub converted_contact_id: Option<i64>,
    pub converted_company_id: Option<i64>,
    pub converted_opportunity_id: Option<i64>,
    pub notes: Option<String>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub scored_at: Option<DateTime<Utc>>,
    /// `rules` or `model`.
    pub scorer: Option<String>,
    pub score_model_version: Option<i32>,
    /// `{base, factors: [{feature, value, contribution}]}` (see `scoring::Explanation`).
    pub score_factors: Option<serde_json::Value>,
}

impl Lead {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }
}

/// The fields clients may filter leads on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadField {
    Id,
    FirstName,
    LastName,
    Email,
    Phone,
    CompanyName,
    JobTitle,
    Industry,
    CompanySize,
    Country,
    State,
    City,
    LeadSource,
    Status,
    Priority,
    OwnerId,
    AssignedToId,
    Score,
    EstimatedValue,
    Probability,
    LastContactedAt,
    NextFollowUpAt,
    ConvertedAt,
    CreatedAt,
    UpdatedAt,
}

impl Field for LeadField {
    fn sql(self) -> &'static str {
        match self {
            LeadField::Id => "leads.id",
            LeadField::FirstName => "leads.first_name",
            LeadField::LastName => "leads.last_name",
            LeadField::Email => "leads.email",
            LeadField::Phone => "leads.phone",
            LeadField::CompanyName => "leads.company_name",
            LeadField::JobTitle => "leads.job_title",
            LeadField::Industry => "leads.industry",
            LeadField::CompanySize => "leads.company_size",
            LeadField::Country => "leads.country",
            LeadField::State => "leads.state",
            LeadField::City => "leads.city",
            LeadField::LeadSource => "leads.lead_source",
            LeadField::Status => "leads.status",
            LeadField::Priority => "leads.priority",
            LeadField::OwnerId => "leads.owner_id",
            LeadField::AssignedToId => "leads.assigned_to_id",
            LeadField::Score => "leads.score",
            LeadField::EstimatedValue => "leads.estimated_value",
            LeadField::Probability => "leads.probability",
            LeadField::LastContactedAt => "leads.last_contacted_at",
            LeadField::NextFollowUpAt => "leads.next_follow_up_at",
            LeadField::ConvertedAt => "leads.converted_at",
            LeadField::CreatedAt => "leads.created_at",
            LeadField::UpdatedAt => "leads.updated_at",
        }
    }
}

/// The orders clients may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeadSort {
    CreatedAt,
    UpdatedAt,
    FirstName,
    LastName,
    CompanyName,
    Score,
    EstimatedValue,
    Priority,
}

impl Sort for LeadSort {
    fn key(self, descending: bool) -> SortKey {
        let sql = match self {
            LeadSort::CreatedAt => "leads.created_at",
            LeadSort::UpdatedAt => "leads.updated_at",
            LeadSort::FirstName => "leads.first_name",
            LeadSort::LastName => "leads.last_name",
            LeadSort::CompanyName => "leads.company_name",
            LeadSort::Score => "leads.score",
            LeadSort::EstimatedValue => "leads.estimated_value",
            LeadSort::Priority => Priority::RANK_SQL_LEADS,
        };
        SortKey { sql, descending }
    }
}

impl Listable for Lead {
    type Field = LeadField;
    const WHAT: &'static str = "lead";
    const TABLE: Table = Table {
        name: "leads",
        owner_column: "owner_id",
        assignee_column: Some("assigned_to_id"),
        company_column: None,
    };
    const OWNER_FIELD: Self::Field = LeadField::OwnerId;
    const ASSIGNEE_FIELD: Option<Self::Field> = Some(LeadField::AssignedToId);

    fn id(&self) -> i64 {
        self.id.0
    }

    fn sort_value(&self, key: &SortKey) -> CursorValue {
        let text = |v: &Option<String>| v.clone().map_or(CursorValue::Null, CursorValue::Text);
        match key.sql {
            "leads.created_at" => CursorValue::Timestamp(self.created_at),
            "leads.updated_at" => CursorValue::Timestamp(self.updated_at),
            "leads.first_name" => text(&self.first_name),
            "leads.last_name" => text(&self.last_name),
            "leads.company_name" => text(&self.company_name),
            "leads.score" => self
                .score
                .map_or(CursorValue::Null, |s| CursorValue::Int(i64::from(s))),
            "leads.estimated_value" => self
                .estimated_value
                .as_ref()
                .map_or(CursorValue::Null, |v| CursorValue::Decimal(v.to_string())),
            _ => CursorValue::Int(self.priority.rank()),
        }
    }
}

/// Writable lead fields. For `create`, `None` means "not given"; for `update`, an outer `None`
/// leaves the field alone and `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct LeadInput {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company_name: Option<Option<String>>,
    pub job_title: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub company_size: Option<Option<i32>>,
    pub country: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub lead_source: Option<Option<LeadSource>>,
    pub status: Option<LeadStatus>,
    pub priority: Option<Priority>,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<Option<UserId>>,
    pub estimated_value: Option<Option<BigDecimal>>,
    pub probability: Option<Option<i32>>,
    pub next_follow_up_at: Option<Option<DateTime<Utc>>>,
    /// Normally stamped by logged activities; imports carry it over from other systems.
    pub last_contacted_at: Option<Option<DateTime<Utc>>>,
    pub notes: Option<Option<String>>,
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

/// The validated changes, in column types.
#[derive(Debug, Clone, PartialEq, Default, AsChangeset, Insertable)]
#[diesel(table_name = leads)]
pub struct LeadChanges {
    first_name: Option<Option<String>>,
    last_name: Option<Option<String>>,
    email: Option<Option<String>>,
    phone: Option<Option<String>>,
    company_name: Option<Option<String>>,
    job_title: Option<Option<String>>,
    industry: Option<Option<String>>,
    company_size: Option<Option<i32>>,
    country: Option<Option<String>>,
    state: Option<Option<String>>,
    city: Option<Option<String>>,
    lead_source: Option<Option<LeadSource>>,
    status: Option<LeadStatus>,
    priority: Option<Priority>,
    owner_id: Option<Option<UserId>>,
    assigned_to_id: Option<Option<UserId>>,
    estimated_value: Option<Option<BigDecimal>>,
    probability: Option<Option<i16>>,
    next_follow_up_at: Option<Option<DateTime<Utc>>>,
    last_contacted_at: Option<Option<DateTime<Utc>>>,
    notes: Option<Option<String>>,
    custom_fields: Option<serde_json::Value>,
    tags: Option<Vec<Option<String>>>,
}

const SHORT: usize = 100;
const MEDIUM: usize = 200;
const NOTES: usize = 100_000;

impl LeadInput {
    /// Checks every field; the first problem is reported with its field name.
    fn validate(&self) -> AppResult<LeadChanges> {
        Ok(LeadChanges {
            first_name: text("firstName", &self.first_name, SHORT)?,
            last_name: text("lastName", &self.last_name, SHORT)?,
            email: self
                .email
                .as_ref()
                .map(|e| optional_email("email", e.as_deref()))
                .transpose()?,
            phone: text("phone", &self.phone, 50)?,
            company_name: text("companyName", &self.company_name, MEDIUM)?,
            job_title: text("jobTitle", &self.job_title, MEDIUM)?,
            industry: text("industry", &self.industry, SHORT)?,
            company_size: self
                .company_size
                .map(|v| v.map(|n| non_negative_int("companySize", n)).transpose())
                .transpose()?,
            country: text("country", &self.country, SHORT)?,
            state: text("state", &self.state, SHORT)?,
            city: text("city", &self.city, SHORT)?,
            lead_source: self.lead_source,
            status: self.status,
            priority: self.priority,
            owner_id: self.owner_id.map(Some),
            assigned_to_id: self.assigned_to_id,
            estimated_value: self
                .estimated_value
                .as_ref()
                .map(|v| {
                    v.as_ref()
                        .map(|d| non_negative_decimal("estimatedValue", d))
                        .transpose()
                })
                .transpose()?,
            probability: self
                .probability
                .map(|v| v.map(|p| percentage("probability", p)).transpose())
                .transpose()?,
            next_follow_up_at: self.next_follow_up_at,
            last_contacted_at: self.last_contacted_at,
            notes: text("notes", &self.notes, NOTES)?,
            custom_fields: self
                .custom_fields
                .as_ref()
                .map(|v| custom_fields("customFields", v))
                .transpose()?,
            tags: self
                .tags
                .as_ref()
                .map(|t| tags("tags", t).map(|t| t.into_iter().map(Some).collect()))
                .transpose()?,
        })
    }
}

/// The database's rule that a lead keeps a name, an email or a company, as the client's error;
/// `field` names the input at fault.
fn identity_lost(field: &'static str) -> impl Fn(diesel::result::Error) -> AppError {
    move |err| match &err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::CheckViolation,
            info,
        ) if info.constraint_name() == Some("leads_identity_check") => AppError::bad_input(
            field,
            "a lead needs a first or last name, an email or a company name",
        ),
        _ => err.into(),
    }
}

impl CrmService {
    /// Creates a lead owned by the caller unless an owner is given.
    pub async fn create_lead(&self, viewer: &Viewer, input: LeadInput) -> AppResult<Lead> {
        self.create::<Lead>(viewer, input).await
    }
}

impl Editable for Lead {
    type Input = LeadInput;
    type Changes = LeadChanges;

    super::edit::editable_rows!(leads, LeadId, LeadChanges);

    fn validate(input: &LeadInput) -> AppResult<LeadChanges> {
        input.validate()
    }

    fn for_create(input: &LeadInput) -> AppResult<LeadChanges> {
        let changes = input.validate()?;
        let has_identity = [
            &changes.first_name,
            &changes.last_name,
            &changes.email,
            &changes.company_name,
        ]
        .iter()
        .any(|v| matches!(v, Some(Some(_))));
        if !has_identity {
            return Err(AppError::bad_input(
                "firstName",
                "a lead needs a first or last name, an email or a company name",
            ));
        }
        Ok(changes)
    }

    async fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &LeadChanges,
    ) -> AppResult<()> {
        check_owner_and_assignee(
            conn,
            viewer,
            changes.owner_id.flatten(),
            changes.assigned_to_id.flatten(),
        )
        .await
    }

    fn explain(err: diesel::result::Error, bulk: bool) -> AppError {
        identity_lost(if bulk { "patch" } else { "firstName" })(err)
    }
}
