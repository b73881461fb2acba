//! The CSV columns of each kind of record: what an export writes, what a template shows and
//! what an import reads. One list per kind, in the order a spreadsheet shows them. Headers are
//! the stored column names, except references to users, which travel as e-mail addresses
//! (`owner`, `assigned_to`) so a file moves between workspaces and systems.

use crate::crm::companies::Company;
use crate::crm::contacts::{Contact, ContactStatus, ContactType};
use crate::crm::leads::{Lead, LeadSource, LeadStatus};
use crate::crm::opportunities::{Opportunity, Stage};
use crate::crm::query::{Listable, Table};
use crate::crm::tasks::{Task, TaskStatus, TaskType};
use crate::crm::Priority;

/// A kind of record in the CSV routes (`/api/v1/export/{resource}/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Leads,
    Contacts,
    Companies,
    Opportunities,
    Tasks,
}

impl Resource {
    pub const ALL: [Resource; 5] = [
        Resource::Leads,
        Resource::Contacts,
        Resource::Companies,
        Resource::Opportunities,
        Resource::Tasks,
    ];

    /// From the route segment (`leads`, ...).
    pub fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == segment)
    }

    pub fn name(self) -> &'static str {
        match self {
            Resource::Leads => "leads",
            Resource::Contacts => "contacts",
            Resource::Companies => "companies",
            Resource::Opportunities => "opportunities",
            Resource::Tasks => "tasks",
        }
    }

    /// The table and its visibility columns (the list engine's definition).
    pub fn table(self) -> Table {
        match self {
            Resource::Leads => Lead::TABLE,
            Resource::Contacts => Contact::TABLE,
            Resource::Companies => Company::TABLE,
            Resource::Opportunities => Opportunity::TABLE,
            Resource::Tasks => Task::TABLE,
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Resource::Leads => LEADS,
            Resource::Contacts => CONTACTS,
            Resource::Companies => COMPANIES,
            Resource::Opportunities => OPPORTUNITIES,
            Resource::Tasks => TASKS,
        }
    }

    pub fn column(self, name: &str) -> Option<&'static Column> {
        self.columns().iter().find(|c| c.name == name)
    }
}

/// How a column's values are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Text,
    Email,
    Integer,
    Decimal,
    /// 0-100.
    Percent,
    /// ISO 8601 in UTC (`2026-11-24T09:30:00Z`).
    Timestamp,
    /// `2026-11-24`.
    Date,
    /// One of these stored values.
    Enum(&'static [&'static str]),
    /// Several, separated by `;`.
    Tags,
    /// A user of the workspace, by e-mail; stored as the user's ID in `Column::stored`.
    User,
    /// The ID of another record of the workspace.
    Reference,
    /// The record's own ID.
    Id,
}

/// One CSV column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// The CSV header.
    pub name: &'static str,
    /// The stored column it comes from.
    pub stored: &'static str,
    pub ty: Type,
    /// Whether an import may set it (IDs and bookkeeping are export-only).
    pub importable: bool,
    /// A valid value for the template's example row ("" for none).
    pub example: &'static str,
}

const fn col(name: &'static str, ty: Type, example: &'static str) -> Column {
    Column {
        name,
        stored: name,
        ty,
        importable: true,
        example,
    }
}

const fn read_only(name: &'static str, ty: Type) -> Column {
    Column {
        name,
        stored: name,
        ty,
        importable: false,
        example: "",
    }
}

const fn user(name: &'static str, stored: &'static str, example: &'static str) -> Column {
    Column {
        name,
        stored,
        ty: Type::User,
        importable: true,
        example,
    }
}

const LEADS: &[Column] = &[
    read_only("id", Type::Id),
    col("first_name", Type::Text, "Ada"),
    col("last_name", Type::Text, "Lovelace"),
    col("email", Type::Email, "ada@example.com"),
    col("phone", Type::Text, "+44 20 7946 0000"),
    col("company_name", Type::Text, "Analytical Engines Ltd"),
    col("job_title", Type::Text, "Head of Research"),
    col("industry", Type::Text, "Software"),
    col("company_size", Type::Integer, "50"),
    col("country", Type::Text, "United Kingdom"),
    col("state", Type::Text, "England"),
    col("city", Type::Text, "London"),
    col("lead_source", Type::Enum(LeadSource::VALUES), "website"),
    col("status", Type::Enum(LeadStatus::VALUES), "new"),
    col("priority", Type::Enum(Priority::VALUES), "medium"),
    user("owner", "owner_id", ""),
    user("assigned_to", "assigned_to_id", ""),
    read_only("score", Type::Percent),
    col("estimated_value", Type::Decimal, "12000.00"),
    col("probability", Type::Percent, "20"),
    col("last_contacted_at", Type::Timestamp, ""),
    col("next_follow_up_at", Type::Timestamp, "2026-12-01T09:00:00Z"),
    read_only("converted_at", Type::Timestamp),
    col("notes", Type::Text, "Met at the trade show"),
    col("tags", Type::Tags, "vip;emea"),
    read_only("created_at", Type::Timestamp),
    read_only("updated_at", Type::Timestamp),
];

const CONTACTS: &[Column] = &[
    read_only("id", Type::Id),
    col("salutation", Type::Text, "Dr"),
    col("first_name", Type::Text, "Grace"),
    col("last_name", Type::Text, "Hopper"),
    col("email", Type::Email, "grace@example.com"),
    col("phone", Type::Text, "+1 202 555 0100"),
    col("mobile", Type::Text, ""),
    col("company_id", Type::Reference, ""),
    col("job_title", Type::Text, "Rear Admiral"),
    col("department", Type::Text, "Engineering"),
    col("address_line1", Type::Text, "1 Navy Way"),
    col("address_line2", Type::Text, ""),
    col("city", Type::Text, "Arlington"),
    col("state", Type::Text, "VA"),
    col("postal_code", Type::Text, "22202"),
    col("country", Type::Text, "United States"),
    col("contact_type", Type::Enum(ContactType::VALUES), "prospect"),
    col("status", Type::Enum(ContactStatus::VALUES), "active"),
    col("website", Type::Text, ""),
    col("linkedin", Type::Text, ""),
    col("twitter", Type::Text, ""),
    col("notes", Type::Text, ""),
    user("owner", "owner_id", ""),
    user("assigned_to", "assigned_to_id", ""),
    col("tags", Type::Tags, "navy"),
    read_only("created_at", Type::Timestamp),
    read_only("updated_at", Type::Timestamp),
];

const COMPANIES: &[Column] = &[
    read_only("id", Type::Id),
    col("name", Type::Text, "Acme Corporation"),
    col("domain", Type::Text, "acme.example"),
    col("industry", Type::Text, "Manufacturing"),
    col("employee_count", Type::Integer, "250"),
    col("annual_revenue", Type::Decimal, "1500000.00"),
    col("phone", Type::Text, "+1 555 0100"),
    col("website", Type::Text, "https://acme.example"),
    col("address_line1", Type::Text, "1 Road Runner Way"),
    col("address_line2", Type::Text, ""),
    col("city", Type::Text, "Phoenix"),
    col("state", Type::Text, "AZ"),
    col("postal_code", Type::Text, "85001"),
    col("country", Type::Text, "United States"),
    col("notes", Type::Text, ""),
    user("owner", "owner_id", ""),
    col("tags", Type::Tags, "key-account"),
    read_only("created_at", Type::Timestamp),
    read_only("updated_at", Type::Timestamp),
];

const OPPORTUNITIES: &[Column] = &[
    read_only("id", Type::Id),
    col("name", Type::Text, "Acme renewal 2027"),
    col("description", Type::Text, ""),
    col("company_id", Type::Reference, ""),
    col("contact_id", Type::Reference, ""),
    col("stage", Type::Enum(Stage::VALUES), "proposal"),
    col("probability", Type::Percent, "50"),
    col("amount", Type::Decimal, "25000.00"),
    col("currency", Type::Text, "USD"),
    col("expected_close_date", Type::Date, "2027-01-31"),
    col("actual_close_date", Type::Date, ""),
    col("lost_reason", Type::Text, ""),
    user("owner", "owner_id", ""),
    user("assigned_to", "assigned_to_id", ""),
    col("tags", Type::Tags, ""),
    read_only("created_at", Type::Timestamp),
    read_only("updated_at", Type::Timestamp),
];

const TASKS: &[Column] = &[
    read_only("id", Type::Id),
    col("title", Type::Text, "Call Ada about the proposal"),
    col("description", Type::Text, ""),
    col("task_type", Type::Enum(TaskType::VALUES), "call"),
    col("status", Type::Enum(TaskStatus::VALUES), "pending"),
    col("priority", Type::Enum(Priority::VALUES), "high"),
    col("due_at", Type::Timestamp, "2026-12-01T10:00:00Z"),
    col("reminder_at", Type::Timestamp, ""),
    read_only("completed_at", Type::Timestamp),
    user("assigned_to", "assigned_to_id", ""),
    user("owner", "owner_id", ""),
    col("lead_id", Type::Reference, ""),
    col("contact_id", Type::Reference, ""),
    col("company_id", Type::Reference, ""),
    col("opportunity_id", Type::Reference, ""),
    col("tags", Type::Tags, ""),
    read_only("created_at", Type::Timestamp),
    read_only("updated_at", Type::Timestamp),
];
