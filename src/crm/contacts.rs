//! Contacts: the people a team talks to, usually at a company.

use chrono::{DateTime, Utc};
use diesel::{AsChangeset, Insertable, QueryableByName};
use diesel_async::AsyncPgConnection;

use super::companies::{Company, CompanyId};
use super::edit::Editable;
use super::query::{self, CursorValue, Field, Listable, SortKey, Table};
use super::{check_owner_and_assignee, clearable_text as text, CrmService, Sort};
use crate::auth::{UserId, Viewer, WorkspaceId};
use crate::db::schema::contacts;
use crate::error::{AppError, AppResult};
use crate::validation::{custom_fields, optional_email, required_text, tags};

crate::id_type!(
    /// A contact's ID.
    ContactId
);

crate::text_enum!(
    /// The relationship with a contact.
    ContactType {
        Customer => "customer",
        Prospect => "prospect",
        Vendor => "vendor",
        Partner => "partner",
    }
);

crate::text_enum!(
    /// Whether a contact is current.
    ContactStatus {
        Active => "active",
        Inactive => "inactive",
    }
);

/// A contact as stored.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = contacts)]
pub struct Contact {
    pub id: ContactId,
    pub workspace_id: WorkspaceId,
    pub salutation: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
    pub company_id: Option<CompanyId>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub address_line1: Option<String>,
    pub address_line2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub contact_type: ContactType,
    pub status: ContactStatus,
    pub website: Option<String>,
    pub linkedin: Option<String>,
    pub twitter: Option<String>,
    pub notes: Option<String>,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<UserId>,
    pub custom_fields: serde_json::Value,
    pub tags: Vec<Option<String>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Contact {
    pub fn tag_list(&self) -> Vec<String> {
        self.tags.iter().flatten().cloned().collect()
    }
}

/// The fields clients may filter contacts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactField {
    Id,
    FirstName,
    LastName,
    Email,
    Phone,
    Mobile,
    CompanyId,
    JobTitle,
    Department,
    City,
    State,
    Country,
    ContactType,
    Status,
    OwnerId,
    AssignedToId,
    CreatedAt,
    UpdatedAt,
}

impl Field for ContactField {
    fn sql(self) -> &'static str {
        match self {
            ContactField::Id => "contacts.id",
            ContactField::FirstName => "contacts.first_name",
            ContactField::LastName => "contacts.last_name",
            ContactField::Email => "contacts.email",
            ContactField::Phone => "contacts.phone",
            ContactField::Mobile => "contacts.mobile",
            ContactField::CompanyId => "contacts.company_id",
            ContactField::JobTitle => "contacts.job_title",
            ContactField::Department => "contacts.department",
            ContactField::City => "contacts.city",
            ContactField::State => "contacts.state",
            ContactField::Country => "contacts.country",
            ContactField::ContactType => "contacts.contact_type",
            ContactField::Status => "contacts.status",
            ContactField::OwnerId => "contacts.owner_id",
            ContactField::AssignedToId => "contacts.assigned_to_id",
            ContactField::CreatedAt => "contacts.created_at",
            ContactField::UpdatedAt => "contacts.updated_at",
        }
    }
}

/// The orders clients may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactSort {
    CreatedAt,
    UpdatedAt,
    FirstName,
    LastName,
    Email,
}

impl Sort for ContactSort {
    fn key(self, descending: bool) -> SortKey {
        let sql = match self {
            ContactSort::CreatedAt => "contacts.created_at",
            ContactSort::UpdatedAt => "contacts.updated_at",
            ContactSort::FirstName => "contacts.first_name",
            ContactSort::LastName => "contacts.last_name",
            ContactSort::Email => "contacts.email",
        };
        SortKey { sql, descending }
    }
}

impl query::CompanyChild for Contact {
    fn company(&self) -> Option<i64> {
        self.company_id.map(|c| c.0)
    }
}

impl Listable for Contact {
    type Field = ContactField;
    const WHAT: &'static str = "contact";
    const UNIQUE_FIELD: Option<&'static str> = Some("email");
    const TABLE: Table = Table {
        name: "contacts",
        owner_column: "owner_id",
        assignee_column: Some("assigned_to_id"),
        company_column: Some("company_id"),
    };
    const OWNER_FIELD: Self::Field = ContactField::OwnerId;
    const ASSIGNEE_FIELD: Option<Self::Field> = Some(ContactField::AssignedToId);

    fn id(&self) -> i64 {
        self.id.0
    }

    fn sort_value(&self, key: &SortKey) -> CursorValue {
        let text = |v: &Option<String>| v.clone().map_or(CursorValue::Null, CursorValue::Text);
        match key.sql {
            "contacts.updated_at" => CursorValue::Timestamp(self.updated_at),
            "contacts.first_name" => CursorValue::Text(self.first_name.clone()),
            "contacts.last_name" => text(&self.last_name),
            "contacts.email" => text(&self.email),
            _ => CursorValue::Timestamp(self.created_at),
        }
    }
}

/// Writable contact fields: for `update`, an outer `None` leaves the field alone and
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ContactInput {
    pub salutation: Option<Option<String>>,
    pub first_name: Option<String>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub mobile: Option<Option<String>>,
    pub company_id: Option<Option<CompanyId>>,
    pub job_title: Option<Option<String>>,
    pub department: Option<Option<String>>,
    pub address_line1: Option<Option<String>>,
    pub address_line2: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub state: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub country: Option<Option<String>>,
    pub contact_type: Option<ContactType>,
    pub status: Option<ContactStatus>,
    pub website: Option<Option<String>>,
    pub linkedin: Option<Option<String>>,
    pub twitter: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub owner_id: Option<UserId>,
    pub assigned_to_id: Option<Option<UserId>>,
    pub custom_fields: Option<serde_json::Value>,
    pub tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Default, AsChangeset, Insertable)]
#[diesel(table_name = contacts)]
pub struct ContactChanges {
    salutation: Option<Option<String>>,
    first_name: Option<String>,
    last_name: Option<Option<String>>,
    email: Option<Option<String>>,
    phone: Option<Option<String>>,
    mobile: Option<Option<String>>,
    company_id: Option<Option<CompanyId>>,
    job_title: Option<Option<String>>,
    department: Option<Option<String>>,
    address_line1: Option<Option<String>>,
    address_line2: Option<Option<String>>,
    city: Option<Option<String>>,
    state: Option<Option<String>>,
    postal_code: Option<Option<String>>,
    country: Option<Option<String>>,
    contact_type: Option<ContactType>,
    status: Option<ContactStatus>,
    website: Option<Option<String>>,
    linkedin: Option<Option<String>>,
    twitter: Option<Option<String>>,
    notes: Option<Option<String>>,
    owner_id: Option<Option<UserId>>,
    assigned_to_id: Option<Option<UserId>>,
    custom_fields: Option<serde_json::Value>,
    tags: Option<Vec<Option<String>>>,
}

impl ContactInput {
    fn validate(&self) -> AppResult<ContactChanges> {
        Ok(ContactChanges {
            salutation: text("salutation", &self.salutation, 20)?,
            first_name: self
                .first_name
                .as_deref()
                .map(|n| required_text("firstName", n, 100))
                .transpose()?,
            last_name: text("lastName", &self.last_name, 100)?,
            email: self
                .email
                .as_ref()
                .map(|e| optional_email("email", e.as_deref()))
                .transpose()?,
            phone: text("phone", &self.phone, 50)?,
            mobile: text("mobile", &self.mobile, 50)?,
            company_id: self.company_id,
            job_title: text("jobTitle", &self.job_title, 200)?,
            department: text("department", &self.department, 100)?,
            address_line1: text("addressLine1", &self.address_line1, 200)?,
            address_line2: text("addressLine2", &self.address_line2, 200)?,
            city: text("city", &self.city, 100)?,
            state: text("state", &self.state, 100)?,
            postal_code: text("postalCode", &self.postal_code, 20)?,
            country: text("country", &self.country, 100)?,
            contact_type: self.contact_type,
            status: self.status,
            website: text("website", &self.website, 500)?,
            linkedin: text("linkedin", &self.linkedin, 500)?,
            twitter: text("twitter", &self.twitter, 100)?,
            notes: text("notes", &self.notes, 100_000)?,
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

/// The unique index on (workspace, email) of live contacts is the rule; its violation is a
/// CONFLICT on `email`.
fn email_taken(err: diesel::result::Error) -> AppError {
    match err {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => AppError::conflict_on(
            "email",
            "a contact with this email already exists in the workspace",
        ),
        other => other.into(),
    }
}

impl CrmService {
    pub async fn create_contact(&self, viewer: &Viewer, input: ContactInput) -> AppResult<Contact> {
        self.create::<Contact>(viewer, input).await
    }
}

impl Editable for Contact {
    type Input = ContactInput;
    type Changes = ContactChanges;

    super::edit::editable_rows!(contacts, ContactId, ContactChanges);

    fn validate(input: &ContactInput) -> AppResult<ContactChanges> {
        input.validate()
    }

    fn for_create(input: &ContactInput) -> AppResult<ContactChanges> {
        if input.first_name.is_none() {
            return Err(AppError::bad_input(
                "firstName",
                "firstName must not be empty",
            ));
        }
        input.validate()
    }

    async fn check_references(
        conn: &mut AsyncPgConnection,
        viewer: &Viewer,
        changes: &ContactChanges,
    ) -> AppResult<()> {
        check_references(conn, viewer, changes).await
    }

    fn explain(err: diesel::result::Error, _bulk: bool) -> AppError {
        email_taken(err)
    }
}

/// Owner, assignee and company must be ones the caller may use.
async fn check_references(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    changes: &ContactChanges,
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
    Ok(())
}

/// Creates a contact inside the caller's transaction (also used by lead conversion).
pub(crate) async fn create_contact_in(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    input: ContactInput,
) -> AppResult<Contact> {
    super::edit::create_in::<Contact>(conn, viewer, input).await
}
