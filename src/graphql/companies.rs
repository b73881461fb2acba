//! Companies over GraphQL: the `Company` type, `company`/`companies`, and create, update,
//! delete, restore.

use async_graphql::{Context, Enum, InputObject, MaybeUndefined, Object, ID};
use chrono::{DateTime, Utc};

use super::connection::connection_types;
use super::contacts::Contact;
use super::context::of_company;
use super::filters::{
    combine, is_me, maybe, CustomFieldFilter, DateTimeFilter, Decimal, DecimalFilter, EntityFilter,
    IdFilter, IntFilter, StringFilter,
};
use super::ids::{parse_id, to_id};
use super::leads::load_user;
use super::prefetch;
use super::record_api::record_api;
use super::users::User;
use crate::auth::{UserId, Viewer};
use crate::crm::activities::RecordRef;
use crate::crm::companies::{self as domain, CompanyField, CompanySort};
use crate::crm::query::{Predicate, Target};
use crate::error::AppResult;

pub struct Company(pub domain::Company);

/// An organisation: the employer of contacts and the buyer in opportunities.
#[Object]
impl Company {
    /// Unique ID of the company.
    async fn id(&self) -> ID {
        to_id(self.0.id.0)
    }
    /// Name.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// Web domain, like `acme.com`.
    async fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    /// Industry.
    async fn industry(&self) -> Option<&str> {
        self.0.industry.as_deref()
    }
    /// Number of employees.
    async fn employee_count(&self) -> Option<i32> {
        self.0.employee_count
    }
    /// Yearly revenue.
    async fn annual_revenue(&self) -> Option<Decimal> {
        self.0.annual_revenue.clone().map(Decimal)
    }
    /// Phone number.
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }
    /// Website address.
    async fn website(&self) -> Option<&str> {
        self.0.website.as_deref()
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
    /// The company's contacts you may see, newest first (at most 200; the `contacts` query
    /// with a `companyId` filter pages through all of them).
    async fn contacts(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Contact>> {
        let found = of_company::<crate::crm::contacts::Contact>(ctx, self.0.id.0).await?;
        Ok(found.into_iter().map(Contact).collect())
    }
    /// The company's opportunities you may see, newest first (at most 200; the
    /// `opportunities` query with a `companyId` filter pages through all of them).
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::opportunities::Opportunity>> {
        let found = of_company::<crate::crm::opportunities::Opportunity>(ctx, self.0.id.0).await?;
        Ok(found
            .into_iter()
            .map(super::opportunities::Opportunity)
            .collect())
    }
    /// Who owns the company record.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, self.0.owner_id).await
    }
    /// Notes, calls, emails, meetings and comments on it, newest first (at most 50).
    async fn activities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::activities::Activity>> {
        super::activities::activities_of(
            ctx,
            crate::crm::activities::RecordRef::Company(self.0.id.0),
        )
        .await
    }
    /// When the company was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the company was last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// When the company was deleted (it can be restored), if it was.
    async fn deleted_at(&self) -> Option<DateTime<Utc>> {
        self.0.deleted_at
    }
}

connection_types!(CompanyConnection, CompanyEdge, Company);

/// Narrows a list of companies. Every condition given must hold; combine with `and`, `or`,
/// `not`.
#[derive(InputObject, Default)]
pub struct CompanyFilter {
    /// By ID.
    pub id: Option<IdFilter>,
    /// By name.
    pub name: Option<StringFilter>,
    /// By domain.
    pub domain: Option<StringFilter>,
    /// By industry.
    pub industry: Option<StringFilter>,
    /// By number of employees.
    pub employee_count: Option<IntFilter>,
    /// By yearly revenue.
    pub annual_revenue: Option<DecimalFilter>,
    /// By phone.
    pub phone: Option<StringFilter>,
    /// By city.
    pub city: Option<StringFilter>,
    /// By state.
    pub state: Option<StringFilter>,
    /// By country.
    pub country: Option<StringFilter>,
    /// By owner.
    pub owner_id: Option<IdFilter>,
    /// By creation time.
    pub created_at: Option<DateTimeFilter>,
    /// By last change.
    pub updated_at: Option<DateTimeFilter>,
    /// Companies carrying every one of these tags.
    pub tags: Option<Vec<String>>,
    /// By custom fields.
    pub custom: Option<Vec<CustomFieldFilter>>,
    /// Only companies you own (true) or not (false).
    pub owned_by_me: Option<bool>,
    /// Include deleted companies (top level only).
    pub include_deleted: Option<bool>,
    /// All of these hold.
    pub and: Option<Vec<CompanyFilter>>,
    /// At least one of these holds.
    pub or: Option<Vec<CompanyFilter>>,
    /// This does not hold.
    pub not: Option<Box<CompanyFilter>>,
}

impl EntityFilter for CompanyFilter {
    type Field = CompanyField;

    fn include_deleted(&self) -> bool {
        self.include_deleted == Some(true)
    }

    fn predicate(self, viewer: &Viewer) -> AppResult<Predicate<CompanyField>> {
        use CompanyField as F;
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
            domain => F::Domain, "domain";
            industry => F::Industry, "industry";
            employee_count => F::EmployeeCount, "employeeCount";
            phone => F::Phone, "phone";
            city => F::City, "city";
            state => F::State, "state";
            country => F::Country, "country";
            owner_id => F::OwnerId, "ownerId";
            annual_revenue => F::AnnualRevenue, "annualRevenue";
            created_at => F::CreatedAt, "createdAt";
            updated_at => F::UpdatedAt, "updatedAt";
        }
        if let Some(tags) = self.tags {
            all.push(Predicate::HasTags(tags));
        }
        for custom in self.custom.into_iter().flatten() {
            all.extend(custom.predicates()?);
        }
        all.extend(is_me(F::OwnerId, viewer, self.owned_by_me));
        combine(&mut all, viewer, self.and, self.or, self.not)?;
        Ok(Predicate::All(all))
    }
}

/// What companies can be ordered by.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::crm::companies::CompanySort")]
pub enum CompanyOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Name.
    Name,
    /// Number of employees.
    EmployeeCount,
    /// Yearly revenue.
    AnnualRevenue,
}

/// The writable fields of a company. On update, omitted fields stay as they are and `null`
/// clears a field.
#[derive(InputObject, Default)]
pub struct CompanyInput {
    /// Name (required when creating).
    pub name: Option<String>,
    /// Web domain; `https://www.acme.com/x` is stored as `acme.com`.
    pub domain: MaybeUndefined<String>,
    /// Industry.
    pub industry: MaybeUndefined<String>,
    /// Number of employees (0 or more).
    pub employee_count: MaybeUndefined<i32>,
    /// Yearly revenue (not negative).
    pub annual_revenue: MaybeUndefined<Decimal>,
    /// Phone number.
    pub phone: MaybeUndefined<String>,
    /// Website address.
    pub website: MaybeUndefined<String>,
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
    /// Free-form notes.
    pub notes: MaybeUndefined<String>,
    /// Owner (default: you). Members may only own records themselves.
    pub owner_id: Option<ID>,
    /// The workspace's own fields, as a JSON object (replaces the whole object).
    pub custom_fields: Option<async_graphql::Json<serde_json::Value>>,
    /// Labels (replaces the whole list).
    pub tags: Option<Vec<String>>,
}

impl CompanyInput {
    fn into_domain(self) -> AppResult<domain::CompanyInput> {
        Ok(domain::CompanyInput {
            name: self.name,
            domain: maybe(self.domain),
            industry: maybe(self.industry),
            employee_count: maybe(self.employee_count),
            annual_revenue: maybe(self.annual_revenue).map(|v| v.map(|d| d.0)),
            phone: maybe(self.phone),
            website: maybe(self.website),
            address_line1: maybe(self.address_line1),
            address_line2: maybe(self.address_line2),
            city: maybe(self.city),
            state: maybe(self.state),
            postal_code: maybe(self.postal_code),
            country: maybe(self.country),
            notes: maybe(self.notes),
            owner_id: self
                .owner_id
                .map(|i| parse_id("ownerId", &i).map(UserId))
                .transpose()?,
            custom_fields: self.custom_fields.map(|j| j.0),
            tags: self.tags,
        })
    }
}

impl Company {
    /// Loads the relations a list page's rows select, one query each (see `prefetch`).
    pub(crate) async fn prefetch(
        ctx: &Context<'_>,
        rows: &[&domain::Company],
    ) -> async_graphql::Result<()> {
        let rows = || rows.iter();
        futures_util::try_join!(
            prefetch::users(ctx, "owner", rows().map(|r| r.owner_id).collect()),
            prefetch::of_companies::<crate::crm::contacts::Contact>(
                ctx,
                "contacts",
                rows().map(|r| r.id.0).collect(),
            ),
            prefetch::of_companies::<crate::crm::opportunities::Opportunity>(
                ctx,
                "opportunities",
                rows().map(|r| r.id.0).collect(),
            ),
            prefetch::activities(ctx, rows().map(|r| RecordRef::Company(r.id.0)).collect()),
        )?;
        Ok(())
    }
}

record_api!(
    object: Company, domain: crate::crm::companies::Company, what: "company",
    filter: CompanyFilter, order: CompanyOrderField, default_sort: CompanySort::CreatedAt, input: CompanyInput,
    connection: CompanyConnection, payload: CompanyPayload { company },
    query: CompanyQuery {
        company: "A company you may see (deleted ones included).",
        companies: "The companies you may see. Newest first unless `orderBy` says otherwise.",
        search: "Text to find in name, domain, phone and website.",
    },
    mutation: CompanyMutation {
        create_company: "Creates a company.",
        update_company,
        delete_company,
        restore_company,
        bulk_update_companies,
        bulk_delete_companies,
    },
    service: { create_company },
);
