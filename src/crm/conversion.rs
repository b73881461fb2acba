//! Lead conversion: in one transaction, the lead becomes a contact (reused by email), a
//! company (reused by name, or given), and optionally an opportunity; the lead is marked
//! converted with links to all three.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::companies::{create_company_in, Company, CompanyId, CompanyInput};
use super::contacts::{create_contact_in, Contact, ContactId, ContactInput};
use super::leads::{Lead, LeadId, LeadStatus};
use super::opportunities::{create_opportunity_in, Opportunity, OpportunityInput};
use super::query::referenced;
use super::query::{self, Deleted, Listable};
use super::sql::{Bind, Sql};
use super::CrmService;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};

/// `convertLead` options.
#[derive(Debug, Clone, Default)]
pub struct ConvertLead {
    /// `Some(false)` never creates an opportunity; `None` creates one when the lead has an
    /// estimated value.
    pub create_opportunity: Option<bool>,
    pub opportunity_name: Option<String>,
    pub amount: Option<BigDecimal>,
    pub expected_close_date: Option<NaiveDate>,
    /// Use this company instead of finding or creating one.
    pub company_id: Option<CompanyId>,
    /// Use this contact instead of finding or creating one.
    pub contact_id: Option<ContactId>,
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Conversion {
    pub lead: Lead,
    pub contact: Contact,
    pub company: Option<Company>,
    pub opportunity: Option<Opportunity>,
}

impl CrmService {
    pub async fn convert_lead(
        &self,
        viewer: &Viewer,
        id: LeadId,
        input: ConvertLead,
    ) -> AppResult<Conversion> {
        let viewer = viewer.clone();
        let mut conn = self.db.get().await?;
        conn.transaction::<_, AppError, _>(async move |conn| {
            convert(conn, &viewer, id, input).await
        })
        .await
    }
}

async fn convert(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    id: LeadId,
    input: ConvertLead,
) -> AppResult<Conversion> {
    let lead = query::find::<Lead>(conn, viewer, id.0, Deleted::Hide, true)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    if lead.status == LeadStatus::Converted || lead.converted_at.is_some() {
        return Err(AppError::conflict("this lead is already converted"));
    }
    let company = match input.company_id {
        Some(company) => Some(referenced::<Company>(conn, viewer, company.0, "companyId").await?),
        None => company_for(conn, viewer, &lead).await?,
    };
    let contact = match input.contact_id {
        Some(contact) => referenced::<Contact>(conn, viewer, contact.0, "contactId").await?,
        None => contact_for(conn, viewer, &lead, company.as_ref()).await?,
    };
    let wants_opportunity = input
        .create_opportunity
        .unwrap_or(lead.estimated_value.is_some());
    let opportunity = if wants_opportunity {
        let name = input.opportunity_name.clone().unwrap_or_else(|| {
            let who = company
                .as_ref()
                .map(|c| c.name.clone())
                .unwrap_or_else(|| contact_name(&contact));
            format!("{who} deal")
        });
        let opportunity = OpportunityInput {
            name: Some(name),
            company_id: Some(company.as_ref().map(|c| c.id)),
            contact_id: Some(Some(contact.id)),
            amount: Some(
                input
                    .amount
                    .clone()
                    .or_else(|| lead.estimated_value.clone()),
            ),
            expected_close_date: Some(input.expected_close_date),
            owner_id: lead
                .owner_id
                .filter(|_| viewer.role != crate::auth::Role::Member),
            assigned_to_id: Some(lead.assigned_to_id),
            ..Default::default()
        };
        Some(create_opportunity_in(conn, viewer, opportunity).await?)
    } else {
        None
    };

    let mut mark = Sql::new(
        "UPDATE leads SET status = 'converted', converted_at = now(), updated_at = now(), \
         converted_contact_id = ",
    );
    mark.bind(Bind::Int(contact.id.0))
        .push(", converted_company_id = ")
        .bind_optional_int(company.as_ref().map(|c| c.id.0))
        .push(", converted_opportunity_id = ")
        .bind_optional_int(opportunity.as_ref().map(|o| o.id.0))
        .push(" WHERE id = ")
        .bind(Bind::Int(lead.id()));
    let before = super::events::snapshot(conn, Lead::TABLE.name, &[lead.id()]).await?;
    mark.into_query().execute(conn).await?;
    super::events::changed(
        conn,
        viewer,
        super::events::kind::<Lead>(),
        "converted",
        &[lead.id()],
        &before,
    )
    .await?;
    let lead = query::find::<Lead>(conn, viewer, id.0, Deleted::Hide, false)
        .await?
        .ok_or(AppError::NotFound("lead"))?;
    Ok(Conversion {
        lead,
        contact,
        company,
        opportunity,
    })
}

fn contact_name(contact: &Contact) -> String {
    match &contact.last_name {
        Some(last) => format!("{} {last}", contact.first_name),
        None => contact.first_name.clone(),
    }
}

/// The company of the lead's company name: a live one of the workspace with the same name
/// (ignoring case) that the caller may see, else a new one.
async fn company_for(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    lead: &Lead,
) -> AppResult<Option<Company>> {
    let Some(name) = lead.company_name.clone() else {
        return Ok(None);
    };
    let mut sql = Sql::new("SELECT companies.* FROM companies WHERE ");
    sql.append(query::scope(viewer, &Company::TABLE, Deleted::Hide))
        .push(" AND lower(companies.name) = lower(")
        .bind(Bind::Text(name.clone()))
        .push(") ORDER BY companies.id LIMIT 1");
    let existing: Vec<Company> = sql.into_query().load(conn).await?;
    if let Some(company) = existing.into_iter().next() {
        return Ok(Some(company));
    }
    let input = CompanyInput {
        name: Some(name),
        industry: Some(lead.industry.clone()),
        employee_count: Some(lead.company_size),
        city: Some(lead.city.clone()),
        state: Some(lead.state.clone()),
        country: Some(lead.country.clone()),
        owner_id: lead
            .owner_id
            .filter(|_| viewer.role != crate::auth::Role::Member),
        ..Default::default()
    };
    Ok(Some(create_company_in(conn, viewer, input).await?))
}

/// The contact with the lead's email: an existing live one is reused (only its empty fields
/// are filled), else a new one is created.
async fn contact_for(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    lead: &Lead,
    company: Option<&Company>,
) -> AppResult<Contact> {
    if let Some(email) = &lead.email {
        let mut any = Sql::new("SELECT contacts.* FROM contacts WHERE contacts.workspace_id = ");
        any.bind(Bind::Int(viewer.workspace_id.0))
            .push(" AND contacts.deleted_at IS NULL AND contacts.email = ")
            .bind(Bind::Text(email.clone()))
            .push(" FOR UPDATE");
        let existing: Vec<Contact> = any.into_query().load(conn).await?;
        if let Some(existing) = existing.into_iter().next() {
            // Reusing means writing to it, so the caller must be allowed to see it.
            query::find::<Contact>(conn, viewer, existing.id.0, Deleted::Hide, false)
                .await?
                .ok_or_else(|| {
                    AppError::conflict_on(
                        "email",
                        "a contact with this email exists that you cannot see; ask a manager",
                    )
                })?;
            let mut fill = Sql::new(
                "UPDATE contacts SET updated_at = now(), last_name = COALESCE(last_name, ",
            );
            fill.bind_optional_text(lead.last_name.clone())
                .push("), phone = COALESCE(phone, ")
                .bind_optional_text(lead.phone.clone())
                .push("), job_title = COALESCE(job_title, ")
                .bind_optional_text(lead.job_title.clone())
                .push("), company_id = COALESCE(company_id, ")
                .bind_optional_int(company.map(|c| c.id.0))
                .push(") WHERE id = ")
                .bind(Bind::Int(existing.id.0));
            let before =
                super::events::snapshot(conn, Contact::TABLE.name, &[existing.id.0]).await?;
            fill.into_query().execute(conn).await?;
            super::events::changed(
                conn,
                viewer,
                super::events::kind::<Contact>(),
                "updated",
                &[existing.id.0],
                &before,
            )
            .await?;
            return query::find::<Contact>(conn, viewer, existing.id.0, Deleted::Hide, false)
                .await?
                .ok_or(AppError::NotFound("contact"));
        }
    }
    let first_name = lead
        .first_name
        .clone()
        .or_else(|| lead.last_name.clone())
        .or_else(|| {
            lead.email
                .as_ref()
                .and_then(|e| e.split('@').next().map(str::to_string))
        })
        .or_else(|| lead.company_name.clone())
        .unwrap_or_else(|| "Unknown".to_string());
    let last_name = lead.last_name.clone().filter(|_| lead.first_name.is_some());
    let input = ContactInput {
        first_name: Some(first_name),
        last_name: Some(last_name),
        email: Some(lead.email.clone()),
        phone: Some(lead.phone.clone()),
        job_title: Some(lead.job_title.clone()),
        company_id: Some(company.map(|c| c.id)),
        city: Some(lead.city.clone()),
        state: Some(lead.state.clone()),
        country: Some(lead.country.clone()),
        owner_id: lead
            .owner_id
            .filter(|_| viewer.role != crate::auth::Role::Member),
        assigned_to_id: Some(lead.assigned_to_id),
        custom_fields: Some(lead.custom_fields.clone()),
        tags: Some(lead.tag_list()),
        ..Default::default()
    };
    create_contact_in(conn, viewer, input).await
}
