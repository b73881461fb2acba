//! Companies: the organisations contacts work for and opportunities are sold to.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::{AsChangeset, Insertable, QueryableByName};
use diesel_async::AsyncPgConnection;

use super::edit::Editable;
use super::query::{CursorValue, Field, Listable, SortKey, Table};
use super::{check_user_in_workspace, clearable_text as text, CrmService, Sort};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::companies;
use crate::error::{AppError, AppResult};
use crate::validation::{
    custom_fields, non_negative_decimal, non_negative_int, required_text, tags,
};

crate::id_type!(
    /// A company's ID.
    CompanyId
);

/// A company as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = companies)]
pub struct Company {
    pub id: CompanyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub employee_count: Option<i32>,
    pub annual_revenue: Option<BigDecimal>,
    pub phone: Option<String>,
    pub website: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub notes: Option<String>,
    pub owner_id: Option<UserId>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Company {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }
}

/// The fields clients may filter companies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyField {
    Id,
    Name,
    Domain,
    Industry,
    EmployeeCount,
    AnnualRevenue,
    Phone,
    City,
    State,
    Country,
    OwnerId,
    CreatedAt,
    UpdatedAt,
}

impl Field for CompanyField {
    fn sql(self) -> &'static str {
        match self {
            CompanyField::Id => "companies.id",
            CompanyField::Name => "companies.name",
            CompanyField::Domain => "companies.domain",
            CompanyField::Industry => "companies.industry",
            CompanyField::EmployeeCount => "companies.employee_count",
            CompanyField::AnnualRevenue => "companies.annual_revenue",
            CompanyField::Phone => "companies.phone",
            CompanyField::City => "companies.city",
            CompanyField::State => "companies.state",
            CompanyField::Country => "companies.country",
            CompanyField::OwnerId => "companies.owner_id",
            CompanyField::CreatedAt => "companies.created_at",
            CompanyField::UpdatedAt => "companies.updated_at",
        }
    }
}

/// The orders clients may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanySort {
    CreatedAt,
    UpdatedAt,
    Name,
    EmployeeCount,
    AnnualRevenue,
}

impl Sort for CompanySort {
    fn key(self, descending: bool) -> SortKey {
        let sql = match self {
            CompanySort::CreatedAt => "companies.created_at",
            CompanySort::UpdatedAt => "companies.updated_at",
            CompanySort::Name => "companies.name",
            CompanySort::EmployeeCount => "companies.employee_count",
            CompanySort::AnnualRevenue => "companies.annual_revenue",
        };
        SortKey { sql, descending }
    }
}

impl Listable for Company {
    type Field = CompanyField;
    const WHAT: &'static str = "company";
    const TABLE: Table = Table {
        name: "companies",
        owner_column: "owner_id",
        assignee_column: None,
        company_column: None,
    };
    const OWNER_FIELD: Self::Field = CompanyField::OwnerId;
    const ASSIGNEE_FIELD: Option<Self::Field> = None;

    fn id(&self) -> i64 {
        self.id.0
    }

    fn sort_value(&self, key: &SortKey) -> CursorValue {
        match key.sql {
            "companies.updated_at" => CursorValue::Timestamp(self.updated_at),
            "companies.name" => CursorValue::Text(self.name.clone()),
            "companies.employee_count" => self
                .employee_count
                .map_or(CursorValue::Null, |n| CursorValue::Int(i64::from(n))),
            "companies.annual_revenue" => self
                .annual_revenue
                .as_ref()
                .map_or(CursorValue::Null, |v| CursorValue::Decimal(v.to_string())),
            _ => CursorValue::Timestamp(self.created_at),
        }
    }
}

/// Writable company fields: for `update`, an outer `None` leaves the field alone and
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct CompanyInput {
    pub name: Option<String>,
    pub domain: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub employee_count: Option<Option<i32>>,
    pub annual_revenue: Option<Option<BigDecimal>>,
    pub phone: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub address_line1: Option<Option<String>>,
    pub address_line2: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub owner_id: Option<UserId>,
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, AsChangeset, Insertable)]
#[diesel(table_name = companies)]
pub struct CompanyChanges {
    name: Option<String>,
    domain: Option<Option<String>>,
    industry: Option<Option<String>>,
    employee_count: Option<Option<i32>>,
    annual_revenue: Option<Option<BigDecimal>>,
    phone: Option<Option<String>>,
    website: Option<Option<String>>,
    address_line1: Option<Option<String>>,
    address_line2: Option<Option<String>>,
    city: Option<Option<String>>,
    state: Option<Option<String>>,
    postal_code: Option<Option<String>>,
    country: Option<Option<String>>,
    notes: Option<Option<String>>,
    owner_id: Option<Option<UserId>>,
    custom_fields: Option<serde_json::Value>,
    tags: Option<Vec<Option<String>>>,
}

/// `acme.com` from `https://www.Acme.com/about`: domains are compared and matched lower-case
/// and without scheme or path.
pub(crate) fn normalize_domain(domain: Option<Option<String>>) -> Option<Option<String>> {
    domain.map(|d| {
        d.map(|d| {
            let d = d.trim().to_lowercase();
            let d = d
                .strip_prefix("https://")
                .or_else(|| d.strip_prefix("http://"))
                .unwrap_or(&d);
            let d = d.split('/').next().unwrap_or(d);
            d.strip_prefix("www.").unwrap_or(d).to_string()
        })
    })
}

impl CompanyInput {
    fn validate(&self) -> AppResult<CompanyChanges> {
        Ok(CompanyChanges {
            name: self
                .name
                .as_deref()
                .map(|n| required_text("name", n, 200))
                .transpose()?,
            domain: text("domain", &normalize_domain(self.domain.clone()), 253)?,
            industry: text("industry", &self.industry, 100)?,
            employee_count: self
                .employee_count
                .map(|v| v.map(|n| non_negative_int("employeeCount", n)).transpose())
                .transpose()?,
            annual_revenue: self
                .annual_revenue
                .as_ref()
                .map(|v| {
                    v.as_ref()
                        .map(|d| non_negative_decimal("annualRevenue", d))
                        .transpose()
                })
                .transpose()?,
            phone: text("phone", &self.phone, 50)?,
            website: text("website", &self.website, 500)?,
            address_line1: text("addressLine1", &self.address_line1, 200)?,
            address_line2: text("addressLine2", &self.address_line2, 200)?,
            city: text("city", &self.city, 100)?,
            state: text("state", &self.state, 100)?,
            postal_code: text("postalCode", &self.postal_code, 20)?,
            country: text("country", &self.country, 100)?,
            notes: text("notes", &self.notes, 100_000)?,
            owner_id: self.owner_id.map(Some),
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

impl CrmService {
    pub async fn create_company(&self, viewer: &Viewer, input: CompanyInput) -> AppResult<Company> {
        self.create::<Company>(viewer, input).await
    }
}

impl Editable for Company {
    type Input = CompanyInput;
    type Changes = CompanyChanges;

    super::edit::editable_rows!(companies, CompanyId, CompanyChanges);

    fn validate(input: &CompanyInput) -> AppResult<CompanyChanges> {
        input.validate()
    }

    fn for_create(input: &CompanyInput) -> AppResult<CompanyChanges> {
        if input.name.is_none() {
            return Err(AppError::bad_input("name", "name must not be empty"));
        }
        input.validate()
    }

    async fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &CompanyChanges,
    ) -> AppResult<()> {
        check_user_in_workspace(conn, viewer, "ownerId", changes.owner_id.flatten()).await
    }
}

/// Creates a company inside the caller's transaction (also used by lead conversion).
pub(crate) async fn create_company_in(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    input: CompanyInput,
) -> AppResult<Company> {
    super::edit::create_in::<Company>(conn, viewer, input).await
}
