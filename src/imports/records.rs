//! An imported row as a domain input, per kind: the parsed cells fill the same `*Input` the
//! GraphQL mutations fill, so an import is validated by exactly the rules of a create or an
//! update. An empty cell is "not given": a create leaves the field at its default and an
//! update leaves it alone.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::columns::{Column, Resource, Type};
use super::values::{self, Value};
use crate::auth::UserId;
use crate::crm::companies::{Company, CompanyId, CompanyInput};
use crate::crm::contacts::{Contact, ContactId, ContactInput, ContactStatus, ContactType};
use crate::crm::edit::Editable;
use crate::crm::leads::{Lead, LeadId, LeadInput, LeadSource, LeadStatus};
use crate::crm::opportunities::{Opportunity, OpportunityId, OpportunityInput, Stage};
use crate::crm::tasks::{Task, TaskInput, TaskStatus, TaskType};
use crate::crm::Priority;

/// The parsed, non-empty cells of one row, by column name.
#[derive(Debug, Default)]
pub struct Cells {
    pub values: Vec<(&'static str, Value)>,
    /// `custom.<key>` cells, merged over a matched record's custom fields on update.
    pub custom: serde_json::Map<String, serde_json::Value>,
}

impl Cells {
    /// Parses a non-empty, cleaned text value for a column and keeps it; users are given by
    /// email and resolved with `users` (active users of the workspace by lower-case email).
    pub fn set_column(
        &mut self,
        column: &Column,
        text: &str,
        users: &HashMap<String, i64>,
    ) -> Result<(), String> {
        match values::parse(column.ty, text)? {
            Value::Email(email) if column.ty == Type::User => match users.get(&email) {
                Some(id) => self.values.push((column.name, Value::Id(*id))),
                None => {
                    return Err(format!(
                        "no active user of this workspace has the email {email}"
                    ))
                }
            },
            value => self.values.push((column.name, value)),
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::Text(t) | Value::Email(t)) => Some(t.clone()),
            _ => None,
        }
    }

    /// A clearable text field of an input: given (`Some(Some)`) or not (`None`).
    fn opt_text(&self, name: &str) -> Option<Option<String>> {
        self.text(name).map(Some)
    }

    fn int(&self, name: &str) -> Option<i32> {
        match self.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    fn decimal(&self, name: &str) -> Option<Option<bigdecimal::BigDecimal>> {
        match self.get(name) {
            Some(Value::Decimal(d)) => Some(Some(d.clone())),
            _ => None,
        }
    }

    fn timestamp(&self, name: &str) -> Option<Option<DateTime<Utc>>> {
        match self.get(name) {
            Some(Value::Timestamp(t)) => Some(Some(*t)),
            _ => None,
        }
    }

    fn date(&self, name: &str) -> Option<Option<NaiveDate>> {
        match self.get(name) {
            Some(Value::Date(d)) => Some(Some(*d)),
            _ => None,
        }
    }

    fn choice<E>(&self, name: &str, parse: fn(&str) -> Option<E>) -> Option<E> {
        match self.get(name) {
            Some(Value::Enum(v)) => parse(v),
            _ => None,
        }
    }

    /// A record or user ID.
    pub fn id(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Id(id)) => Some(*id),
            _ => None,
        }
    }

    fn user(&self, name: &str) -> Option<UserId> {
        self.id(name).map(UserId)
    }

    fn tags(&self) -> Option<Vec<String>> {
        match self.get("tags") {
            Some(Value::Tags(t)) => Some(t.clone()),
            _ => None,
        }
    }
}

/// A kind of record an import can write.
pub trait Importable: Editable {
    const RESOURCE: Resource;

    /// The row as the kind's input; `custom_fields` is the object to store, if any.
    fn input(cells: &Cells, custom_fields: Option<serde_json::Value>) -> Self::Input;
}

impl Importable for Lead {
    const RESOURCE: Resource = Resource::Leads;

    fn input(c: &Cells, custom_fields: Option<serde_json::Value>) -> LeadInput {
        LeadInput {
            first_name: c.opt_text("first_name"),
            last_name: c.opt_text("last_name"),
            email: c.opt_text("email"),
            phone: c.opt_text("phone"),
            company_name: c.opt_text("company_name"),
            job_title: c.opt_text("job_title"),
            industry: c.opt_text("industry"),
            company_size: c.int("company_size").map(Some),
            country: c.opt_text("country"),
            state: c.opt_text("state"),
            city: c.opt_text("city"),
            lead_source: c.choice("lead_source", LeadSource::parse).map(Some),
            status: c.choice("status", LeadStatus::parse),
            priority: c.choice("priority", Priority::parse),
            owner_id: c.user("owner"),
            assigned_to_id: c.user("assigned_to").map(Some),
            estimated_value: c.decimal("estimated_value"),
            probability: c.int("probability").map(Some),
            next_follow_up_at: c.timestamp("next_follow_up_at"),
            last_contacted_at: c.timestamp("last_contacted_at"),
            notes: c.opt_text("notes"),
            custom_fields,
            tags: c.tags(),
        }
    }
}

impl Importable for Contact {
    const RESOURCE: Resource = Resource::Contacts;

    fn input(c: &Cells, custom_fields: Option<serde_json::Value>) -> ContactInput {
        ContactInput {
            salutation: c.opt_text("salutation"),
            first_name: c.text("first_name"),
            last_name: c.opt_text("last_name"),
            email: c.opt_text("email"),
            phone: c.opt_text("phone"),
            mobile: c.opt_text("mobile"),
            company_id: c.id("company_id").map(|id| Some(CompanyId(id))),
            job_title: c.opt_text("job_title"),
            department: c.opt_text("department"),
            address_line1: c.opt_text("address_line1"),
            address_line2: c.opt_text("address_line2"),
            city: c.opt_text("city"),
            state: c.opt_text("state"),
            postal_code: c.opt_text("postal_code"),
            country: c.opt_text("country"),
            contact_type: c.choice("contact_type", ContactType::parse),
            status: c.choice("status", ContactStatus::parse),
            website: c.opt_text("website"),
            linkedin: c.opt_text("linkedin"),
            twitter: c.opt_text("twitter"),
            notes: c.opt_text("notes"),
            owner_id: c.user("owner"),
            assigned_to_id: c.user("assigned_to").map(Some),
            custom_fields,
            tags: c.tags(),
        }
    }
}

impl Importable for Company {
    const RESOURCE: Resource = Resource::Companies;

    fn input(c: &Cells, custom_fields: Option<serde_json::Value>) -> CompanyInput {
        CompanyInput {
            name: c.text("name"),
            domain: c.opt_text("domain"),
            industry: c.opt_text("industry"),
            employee_count: c.int("employee_count").map(Some),
            annual_revenue: c.decimal("annual_revenue"),
            phone: c.opt_text("phone"),
            website: c.opt_text("website"),
            address_line1: c.opt_text("address_line1"),
            address_line2: c.opt_text("address_line2"),
            city: c.opt_text("city"),
            state: c.opt_text("state"),
            postal_code: c.opt_text("postal_code"),
            country: c.opt_text("country"),
            notes: c.opt_text("notes"),
            owner_id: c.user("owner"),
            custom_fields,
            tags: c.tags(),
        }
    }
}

impl Importable for Opportunity {
    const RESOURCE: Resource = Resource::Opportunities;

    fn input(c: &Cells, custom_fields: Option<serde_json::Value>) -> OpportunityInput {
        OpportunityInput {
            name: c.text("name"),
            description: c.opt_text("description"),
            company_id: c.id("company_id").map(|id| Some(CompanyId(id))),
            contact_id: c.id("contact_id").map(|id| Some(ContactId(id))),
            stage: c.choice("stage", Stage::parse),
            probability: c.int("probability"),
            amount: c.decimal("amount"),
            currency: c.text("currency"),
            expected_close_date: c.date("expected_close_date"),
            actual_close_date: c.date("actual_close_date"),
            lost_reason: c.opt_text("lost_reason"),
            owner_id: c.user("owner"),
            assigned_to_id: c.user("assigned_to").map(Some),
            custom_fields,
            tags: c.tags(),
        }
    }
}

impl Importable for Task {
    const RESOURCE: Resource = Resource::Tasks;

    fn input(c: &Cells, custom_fields: Option<serde_json::Value>) -> TaskInput {
        TaskInput {
            title: c.text("title"),
            description: c.opt_text("description"),
            task_type: c.choice("task_type", TaskType::parse),
            status: c.choice("status", TaskStatus::parse),
            priority: c.choice("priority", Priority::parse),
            due_at: c.timestamp("due_at"),
            reminder_at: c.timestamp("reminder_at"),
            assigned_to_id: c.user("assigned_to").map(Some),
            owner_id: c.user("owner"),
            lead_id: c.id("lead_id").map(|id| Some(LeadId(id))),
            contact_id: c.id("contact_id").map(|id| Some(ContactId(id))),
            company_id: c.id("company_id").map(|id| Some(CompanyId(id))),
            opportunity_id: c.id("opportunity_id").map(|id| Some(OpportunityId(id))),
            custom_fields,
            tags: c.tags(),
        }
    }
}
