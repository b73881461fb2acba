//! Opportunities: deals in the pipeline, from prospecting to closed won or lost.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::{AsChangeset, Insertable, QueryableByName};
use diesel_async::AsyncPgConnection;

use super::companies::Company;
use super::companies::CompanyId;
use super::contacts::{Contact, ContactId};
use super::edit::Editable;
use super::query::{self, CursorValue, Field, Listable, SortKey, Table};
use super::{check_owner_and_assignee, clearable_text as text, CrmService, Sort};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::opportunities;
use crate::error::{AppError, AppResult};
use crate::validation::{custom_fields, non_negative_decimal, percentage, required_text, tags};

crate::id_type!(
    /// An opportunity's ID.
    OpportunityId
);

crate::text_enum!(
    /// Where a deal stands in the pipeline.
    Stage {
        Prospecting => "prospecting",
        Qualification => "qualification",
        Proposal => "proposal",
        Negotiation => "negotiation",
        ClosedWon => "closed_won",
        ClosedLost => "closed_lost",
    }
);

impl Stage {
    /// The probability a deal in this stage closes, used unless the team sets its own.
    pub fn default_probability(self) -> i16 {
        match self {
            Stage::Prospecting => 10,
            Stage::Qualification => 20,
            Stage::Proposal => 50,
            Stage::Negotiation => 75,
            Stage::ClosedWon => 100,
            Stage::ClosedLost => 0,
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(self, Stage::ClosedWon | Stage::ClosedLost)
    }
}

/// An opportunity as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = opportunities)]
pub struct Opportunity {
    pub id: OpportunityId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub company_id: Option<CompanyId>,
    pub contact_id: Option<ContactId>,
    pub stage: Stage,
    pub probability: i16,
    pub amount: Option<BigDecimal>,
    pub currency: String,
    pub expected_close_date: Option<NaiveDate>,
    pub actual_close_date: Option<NaiveDate>,
    pub lost_reason: Option<String>,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<UserId>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Opportunity {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }
}

/// The fields clients may filter opportunities on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpportunityField {
    Id,
    Name,
    CompanyId,
    ContactId,
    Stage,
    Probability,
    Amount,
    Currency,
    ExpectedCloseDate,
    ActualCloseDate,
    OwnerId,
    AssignedToId,
    CreatedAt,
    UpdatedAt,
}

impl Field for OpportunityField {
    fn sql(self) -> &'static str {
        match self {
            OpportunityField::Id => "opportunities.id",
            OpportunityField::Name => "opportunities.name",
            OpportunityField::CompanyId => "opportunities.company_id",
            OpportunityField::ContactId => "opportunities.contact_id",
            OpportunityField::Stage => "opportunities.stage",
            OpportunityField::Probability => "opportunities.probability",
            OpportunityField::Amount => "opportunities.amount",
            OpportunityField::Currency => "opportunities.currency",
            OpportunityField::ExpectedCloseDate => "opportunities.expected_close_date",
            OpportunityField::ActualCloseDate => "opportunities.actual_close_date",
            OpportunityField::OwnerId => "opportunities.owner_id",
            OpportunityField::AssignedToId => "opportunities.assigned_to_id",
            OpportunityField::CreatedAt => "opportunities.created_at",
            OpportunityField::UpdatedAt => "opportunities.updated_at",
        }
    }
}

/// The orders clients may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpportunitySort {
    CreatedAt,
    UpdatedAt,
    Name,
    Amount,
    ExpectedCloseDate,
    Probability,
}

impl Sort for OpportunitySort {
    fn key(self, descending: bool) -> SortKey {
        let sql = match self {
            OpportunitySort::CreatedAt => "opportunities.created_at",
            OpportunitySort::UpdatedAt => "opportunities.updated_at",
            OpportunitySort::Name => "opportunities.name",
            OpportunitySort::Amount => "opportunities.amount",
            OpportunitySort::ExpectedCloseDate => "opportunities.expected_close_date",
            OpportunitySort::Probability => "opportunities.probability",
        };
        SortKey { sql, descending }
    }
}

impl query::CompanyChild for Opportunity {
    fn company(&self) -> Option<i64> {
        self.company_id.map(|c| c.0)
    }
}

impl Listable for Opportunity {
    type Field = OpportunityField;
    const WHAT: &'static str = "opportunity";
    const TABLE: Table = Table {
        name: "opportunities",
        owner_column: "owner_id",
        assignee_column: Some("assigned_to_id"),
        company_column: Some("company_id"),
    };
    const OWNER_FIELD: Self::Field = OpportunityField::OwnerId;
    const ASSIGNEE_FIELD: Option<Self::Field> = Some(OpportunityField::AssignedToId);

    fn id(&self) -> i64 {
        self.id.0
    }

    fn sort_value(&self, key: &SortKey) -> CursorValue {
        match key.sql {
            "opportunities.updated_at" => CursorValue::Timestamp(self.updated_at),
            "opportunities.name" => CursorValue::Text(self.name.clone()),
            "opportunities.amount" => self
                .amount
                .as_ref()
                .map_or(CursorValue::Null, |v| CursorValue::Decimal(v.to_string())),
            "opportunities.expected_close_date" => self
                .expected_close_date
                .map_or(CursorValue::Null, CursorValue::Date),
            "opportunities.probability" => CursorValue::Int(i64::from(self.probability)),
            _ => CursorValue::Timestamp(self.created_at),
        }
    }
}

/// Writable opportunity fields: for `update`, an outer `None` leaves the field alone and
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct OpportunityInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub company_id: Option<Option<CompanyId>>,
    pub contact_id: Option<Option<ContactId>>,
    pub stage: Option<Stage>,
    /// When absent, the stage's default probability applies (on create and on a stage change).
    pub probability: Option<i32>,
    pub amount: Option<Option<BigDecimal>>,
    pub currency: Option<String>,
    pub expected_close_date: Option<Option<NaiveDate>>,
    /// Normally set by closing; imports carry it over from other systems.
    pub actual_close_date: Option<Option<NaiveDate>>,
    pub lost_reason: Option<Option<String>>,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<Option<UserId>>,
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, AsChangeset, Insertable)]
#[diesel(table_name = opportunities)]
pub struct OpportunityChanges {
    name: Option<String>,
    description: Option<Option<String>>,
    company_id: Option<Option<CompanyId>>,
    contact_id: Option<Option<ContactId>>,
    stage: Option<Stage>,
    probability: Option<i16>,
    amount: Option<Option<BigDecimal>>,
    currency: Option<String>,
    expected_close_date: Option<Option<NaiveDate>>,
    actual_close_date: Option<Option<NaiveDate>>,
    lost_reason: Option<Option<String>>,
    owner_id: Option<Option<UserId>>,
    assigned_to_id: Option<Option<UserId>>,
    custom_fields: Option<serde_json::Value>,
    tags: Option<Vec<Option<String>>>,
}

/// An ISO 4217 code: three letters, stored upper-case.
fn currency(value: &str) -> AppResult<String> {
    let code = value.trim().to_uppercase();
    if code.len() != 3 || !code.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(AppError::bad_input(
            "currency",
            "currency must be a three-letter ISO code such as USD",
        ));
    }
    Ok(code)
}

impl OpportunityInput {
    fn validate(&self) -> AppResult<OpportunityChanges> {
        Ok(OpportunityChanges {
            name: self
                .name
                .as_deref()
                .map(|n| required_text("name", n, 200))
                .transpose()?,
            description: text("description", &self.description, 100_000)?,
            company_id: self.company_id,
            contact_id: self.contact_id,
            stage: self.stage,
            probability: self
                .probability
                .map(|p| percentage("probability", p))
                .transpose()?,
            amount: self
                .amount
                .as_ref()
                .map(|v| {
                    v.as_ref()
                        .map(|d| non_negative_decimal("amount", d))
                        .transpose()
                })
                .transpose()?,
            currency: self.currency.as_deref().map(currency).transpose()?,
            expected_close_date: self.expected_close_date,
            actual_close_date: self.actual_close_date,
            lost_reason: text("lostReason", &self.lost_reason, 1000)?,
            owner_id: self.owner_id.map(Some),
            assigned_to_id: self.assigned_to_id,
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

/// Stage rules: a stage change brings the stage's probability unless one is given, and
/// closing sets the actual close date (today unless one is given) while reopening clears it.
fn apply_stage(changes: &mut OpportunityChanges, previous: Option<Stage>) {
    let Some(stage) = changes.stage else {
        return;
    };
    if previous == Some(stage) {
        return;
    }
    if changes.probability.is_none() {
        changes.probability = Some(stage.default_probability());
    }
    if changes.actual_close_date.is_none() {
        changes.actual_close_date = Some(stage.is_closed().then(|| Utc::now().date_naive()));
    }
}

impl CrmService {
    pub async fn create_opportunity(
        &self,
        viewer: &Viewer,
        input: OpportunityInput,
    ) -> AppResult<Opportunity> {
        self.create::<Opportunity>(viewer, input).await
    }
}

impl Editable for Opportunity {
    type Input = OpportunityInput;
    type Changes = OpportunityChanges;

    super::edit::editable_rows!(opportunities, OpportunityId, OpportunityChanges);

    fn validate(input: &OpportunityInput) -> AppResult<OpportunityChanges> {
        input.validate()
    }

    fn for_create(input: &OpportunityInput) -> AppResult<OpportunityChanges> {
        if input.name.is_none() {
            return Err(AppError::bad_input("name", "name must not be empty"));
        }
        let mut changes = input.validate()?;
        changes.stage = Some(changes.stage.unwrap_or(Stage::Prospecting));
        apply_stage(&mut changes, None);
        Ok(changes)
    }

    fn for_row(changes: &OpportunityChanges, current: &Self) -> AppResult<OpportunityChanges> {
        let mut changes = changes.clone();
        apply_stage(&mut changes, Some(current.stage));
        Ok(changes)
    }

    async fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &OpportunityChanges,
    ) -> AppResult<()> {
        check_references(conn, viewer, changes).await
    }
}

/// Owner, assignee, company and contact must be ones the caller may use.
async fn check_references(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    changes: &OpportunityChanges,
) -> AppResult<()> {
    check_owner_and_assignee(
        conn,
        viewer,
        changes.owner_id.flatten(),
        changes.assigned_to_id.flatten(),
    )
    .await?;
    if let Some(company) = changes.company_id.flatten() {
        query::referenced::<Company>(conn, viewer, company.0, "companyId").await?;
    }
    if let Some(contact) = changes.contact_id.flatten() {
        query::referenced::<Contact>(conn, viewer, contact.0, "contactId").await?;
    }
    Ok(())
}

/// Creates an opportunity inside the caller's transaction (also used by lead conversion).
pub(crate) async fn create_opportunity_in(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    input: OpportunityInput,
) -> AppResult<Opportunity> {
    super::edit::create_in::<Opportunity>(conn, viewer, input).await
}
