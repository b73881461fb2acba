//! Contacts over GraphQL: the `Contact` type, `contact`/`contacts`, and create, update,
//! delete, restore.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, ID};
use chrono::{DateTime, Utc};

use super::companies::Company;
use super::connection::connection_types;
use super::context::linked;
use super::filters::{
    combine, is_me, maybe, CustomFieldFilter, DateTimeFilter, EntityFilter, EnumFilter, IdFilter,
    StoredAs, StringFilter,
};
use super::ids::{parse_id, to_id};
use super::leads::load_user;
use super::prefetch;
use super::record_api::record_api;
use super::users::User;
use crate::auth::{UserId, Viewer};
use crate::crm::activities::RecordRef;
use crate::crm::companies::CompanyId;
use crate::crm::contacts::{self as domain, ContactField, ContactSort};
use crate::crm::query::{Predicate, Target};
use crate::error::AppResult;

/// The relationship with a contact.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ContactType", remote = "crate::crm::contacts::ContactType")]
pub enum ContactTypeValue {
    /// Buys from us.
    Customer,
    /// Might buy from us.
    Prospect,
    /// Sells to us.
    Vendor,
    /// Works with us.
    Partner,
}

/// Whether a contact is current.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ContactStatus", remote = "crate::crm::contacts::ContactStatus")]
pub enum ContactStatusValue {
    /// Current.
    Active,
    /// No longer current.
    Inactive,
}

impl StoredAs for ContactTypeValue {
    fn stored(&self) -> &'static str {
        domain::ContactType::from(*self).as_str()
    }
}

impl StoredAs for ContactStatusValue {
    fn stored(&self) -> &'static str {
        domain::ContactStatus::from(*self).as_str()
    }
}

pub struct Contact(pub domain::Contact);

/// A person the team talks to, usually at a company.
#[Object]
impl Contact {
    /// Unique ID of the contact.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// Mr, Ms, Dr...
    async fn salutation(&self) -> Option<&str> {
        self.0.salutation.as_deref()
    }
    /// First name.
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }
    /// Last name.
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }
    /// Email address (lower-cased, unique among the workspace's live contacts).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
    /// Phone number.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Mobile number.
    async fn mobile(&self) -> Option<&str> {
        self.0.mobile.as_deref()
    }
    /// The company the contact works for, when you may see it.
    async fn company(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Company>> {
        Ok(linked(ctx, self.0.company_id.map(|c| c.0))
            .await?
            .map(Company))
    }
    /// Job title.
    async fn job_title(&self) -> Option<&str> {
        self.0.job_title.as_deref()
    }
    /// Department.
    async fn department(&self) -> Option<&str> {
        self.0.department.as_deref()
    }
    /// Street address, first line.
    async fn address_line1(&self) -> Option<&str> {
        self.0.address_line1.as_deref()
    }
    /// Street address, second line.
    async fn address_line2(&self) -> Option<&str> {
        self.0.address_line2.as_deref()
    }
    /// City.
    async fn city(&self) -> Option<&str> {
        self.0.city.as_deref()
    }
    /// State or region.
    async fn state(&self) -> Option<&str> {
        self.0.state.as_deref()
    }
    /// Postal code.
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    /// Country.
    async fn country(&self) -> Option<&str> {
        self.0.country.as_deref()
    }
    /// The relationship.
    async fn contact_type(&self) -> ContactTypeValue {
        self.0.contact_type.into()
    }
    /// Whether the contact is current.
    async fn status(&self) -> ContactStatusValue {
        self.0.status.into()
    }
    /// Website.
    async fn website(&self) -> Option<&str> {
        self.0.website.as_deref()
    }
    /// LinkedIn profile.
    async fn linkedin(&self) -> Option<&str> {
        self.0.linkedin.as_deref()
    }
    /// Twitter/X handle.
    async fn twitter(&self) -> Option<&str> {
        self.0.twitter.as_deref()
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
    /// Who owns the contact.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.owner_id).await
    }
    /// Who works with the contact.
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
            crate::crm::activities::RecordRef::Contact(self.0.id.0),
        )
        .await
    }
    /// When the contact was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the contact was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the contact was deleted (it can be restored), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

connection_types!(ContactConnection, ContactEdge, Contact);

/// Narrows a list of contacts. Every condition given must hold; combine with `and`, `or`,
/// `not`.
#[derive(InputObject, Default)]
pub struct ContactFilter {
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
    /// By mobile number.
    pub mobile: Option<StringFilter>,
    /// By company.
    pub company_id: Option<IdFilter>,
    /// By job title.
    pub job_title: Option<StringFilter>,
    /// By department.
    pub department: Option<StringFilter>,
    /// By city.
    pub city: Option<StringFilter>,
    /// By state.
    pub state: Option<StringFilter>,
    /// By country.
    pub country: Option<StringFilter>,
    /// By relationship.
    pub contact_type: Option<EnumFilter<ContactTypeValue>>,
    /// By status.
    pub status: Option<EnumFilter<ContactStatusValue>>,
    /// By owner.
    pub owner_id: Option<IdFilter>,
    /// By assignee.
    pub assigned_to_id: Option<IdFilter>,
    /// By creation time.
    pub created_at: Option<DateTimeFilter>,
    /// By last change.
    pub updated_at: Option<DateTimeFilter>,
    /// Contacts carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// By custom fields.
    pub custom: Option<Vec<CustomFieldFilter>>,
    /// Only contacts assigned to you (true) or not (false).
    pub assigned_to_me: Option<bool>,
    /// Only contacts you own (true) or not (false).
    pub owned_by_me: Option<bool>,
    /// Include deleted contacts (top level only).
    pub include_deleted: Option<bool>,
    /// All of these hold.
    pub and: Option<Vec<ContactFilter>>,
    /// At least one of these holds.
    pub or: Option<Vec<ContactFilter>>,
    /// This does not hold.
    pub not: Option<Box<ContactFilter>>,
}

impl EntityFilter for ContactFilter {
    type Field = ContactField;

    fn include_deleted(&self) -> bool {
        self.include_deleted == Some(true)
    }

    fn predicate(self, viewer: &Viewer) -> AppResult<Predicate<ContactField>> {
        use ContactField as F;
        let f = Target::Field;
        let mut all = Vec::new();
        macro_rules! checked {
            ($($name:ident => $field:expr, $label:literal;)*) => {
                $(if let Some(filter) = self.$name { all.extend(filter.predicates($label, f($field))?); })*
            };
        }
        checked! {
            id => F::Id, "id";
            first_name => F::FirstName, "firstName";
            last_name => F::LastName, "lastName";
            email => F::Email, "email";
            phone => F::Phone, "phone";
            mobile => F::Mobile, "mobile";
            company_id => F::CompanyId, "companyId";
            job_title => F::JobTitle, "jobTitle";
            department => F::Department, "department";
            city => F::City, "city";
            state => F::State, "state";
            country => F::Country, "country";
            owner_id => F::OwnerId, "ownerId";
            assigned_to_id => F::AssignedToId, "assignedToId";
            created_at => F::CreatedAt, "createdAt";
            updated_at => F::UpdatedAt, "updatedAt";
            contact_type => F::ContactType, "contactType";
            status => F::Status, "status";
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

/// What contacts can be ordered by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::crm::contacts::ContactSort")]
pub enum ContactOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// First name.
    FirstName,
    /// Last name.
    LastName,
    /// Email.
    Email,
}

/// The writable fields of a contact. On update, omitted fields stay as they are and `null`
/// clears a field.
#[derive(InputObject, Default)]
pub struct ContactInput {
    /// Mr, Ms, Dr...
    pub salutation: MaybeUndefined<String>,
    /// First name (required when creating).
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: MaybeUndefined<String>,
    /// Email; unique among the workspace's live contacts.
    pub email: MaybeUndefined<String>,
    /// Phone number.
    pub phone: MaybeUndefined<String>,
    /// Mobile number.
    pub mobile: MaybeUndefined<String>,
    /// The company: one you may see.
    pub company_id: MaybeUndefined<ID>,
    /// Job title.
    pub job_title: MaybeUndefined<String>,
    /// Department.
    pub department: MaybeUndefined<String>,
    /// Street address, first line.
    pub address_line1: MaybeUndefined<String>,
    /// Street address, second line.
    pub address_line2: MaybeUndefined<String>,
    /// City.
    pub city: MaybeUndefined<String>,
    /// State or region.
    pub state: MaybeUndefined<String>,
    /// Postal code.
    pub postal_code: MaybeUndefined<String>,
    /// Country.
    pub country: MaybeUndefined<String>,
    /// Relationship (default PROSPECT).
    pub contact_type: Option<ContactTypeValue>,
    /// Status (default ACTIVE).
    pub status: Option<ContactStatusValue>,
    /// Website.
    pub website: MaybeUndefined<String>,
    /// LinkedIn profile.
    pub linkedin: MaybeUndefined<String>,
    /// Twitter/X handle.
    pub twitter: MaybeUndefined<String>,
    /// Free-form notes.
    pub notes: MaybeUndefined<String>,
    /// Owner (default: you). Members may only own records themselves.
    pub owner_id: Option<ID>,
    /// Assignee: a user of your workspace.
    pub assigned_to_id: MaybeUndefined<ID>,
    /// The workspace's own fields, as a JSON object (replaces the whole object).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (replaces the whole list).
    pub tags: Option<Vec<String>>,
}

impl ContactInput {
    fn into_domain(self) -> AppResult<domain::ContactInput> {
        let user =
            |field: &str, id: Option<ID>| id.map(|i| parse_id(field, &i).map(UserId)).transpose();
        Ok(domain::ContactInput {
            salutation: maybe(self.salutation),
            first_name: self.first_name,
            last_name: maybe(self.last_name),
            email: maybe(self.email),
            phone: maybe(self.phone),
            mobile: maybe(self.mobile),
            company_id: maybe(self.company_id)
                .map(|v| {
                    v.map(|i| parse_id("companyId", &i).map(CompanyId))
                        .transpose()
                })
                .transpose()?,
            job_title: maybe(self.job_title),
            department: maybe(self.department),
            address_line1: maybe(self.address_line1),
            address_line2: maybe(self.address_line2),
            city: maybe(self.city),
            state: maybe(self.state),
            postal_code: maybe(self.postal_code),
            country: maybe(self.country),
            contact_type: self.contact_type.map(Into::into),
            status: self.status.map(Into::into),
            website: maybe(self.website),
            linkedin: maybe(self.linkedin),
            twitter: maybe(self.twitter),
            notes: maybe(self.notes),
            owner_id: user("ownerId", self.owner_id)?,
            assigned_to_id: maybe(self.assigned_to_id)
                .map(|v| user("assignedToId", v))
                .transpose()?,
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

impl Contact {
    /// Loads the relations a list page's rows select, one query each (see `prefetch`).
    pub(crate) async fn prefetch(
        ctx: &Context<'_>,
        rows: &[&domain::Contact],
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
            prefetch::activities(ctx, rows().map(|r| RecordRef::Contact(r.id.0)).collect()),
        )?;
        Ok(())
    }
}

record_api!(
    object: Contact, domain: crate::crm::contacts::Contact, what: "contact",
    filter: ContactFilter, order: ContactOrderField, default_sort: ContactSort::CreatedAt, input: ContactInput,
    connection: ContactConnection, payload: ContactPayload { contact },
    query: ContactQuery {
        contact: "A contact you may see (deleted ones included).",
        contacts: "The contacts you may see. Newest first unless `orderBy` says otherwise.",
        search: "Text to find in names, email and phone numbers.",
    },
    mutation: ContactMutation {
        create_contact: "Creates a contact.",
        update_contact,
        delete_contact,
        restore_contact,
        bulk_update_contacts,
        bulk_delete_contacts,
    },
    service: { create_contact },
);
