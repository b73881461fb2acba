//! Per-request DataLoaders: they batch lookups and see only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::errors::to_graphql_error;
use crate::app::App;
use crate::auth::{User, UserId, Viewer, Workspace, WorkspaceId};
use crate::crm::companies::{Company, CompanyId};
use crate::crm::contacts::{Contact, ContactId};

/// Loads the workspace of a `User` object. Users are scoped when they are fetched, so the
/// workspace of a user the caller holds is visible to the caller (also right after `login`,
/// when the request itself carried no token).
pub struct WorkspaceLoader {
    app: Arc<App>,
}

impl WorkspaceLoader {
    pub fn new(app: Arc<App>) -> Self {
        WorkspaceLoader { app }
    }
}

impl Loader<WorkspaceId> for WorkspaceLoader {
    type Value = Workspace;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[WorkspaceId],
    ) -> Result<HashMap<WorkspaceId, Workspace>, Self::Error> {
        let found = self
            .app
            .auth
            .workspaces_by_ids(keys)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|w| (w.id, w)).collect())
    }
}

/// Loads users referenced by records (owners, assignees), limited to the caller's workspace.
pub struct UserLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl UserLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        UserLoader { app, viewer }
    }
}

impl Loader<UserId> for UserLoader {
    type Value = User;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, User>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let found = self
            .app
            .auth
            .users_by_ids(viewer, keys)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|u| (u.id, u)).collect())
    }
}

/// Loads companies referenced by records, as the caller may see them (an invisible company
/// is simply absent).
pub struct CompanyLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl CompanyLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        CompanyLoader { app, viewer }
    }
}

impl Loader<CompanyId> for CompanyLoader {
    type Value = Company;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[CompanyId]) -> Result<HashMap<CompanyId, Company>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let found = self
            .app
            .crm
            .companies_by_ids(viewer, &ids)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|c| (c.id, c)).collect())
    }
}

/// Loads the contacts of many companies in one query (`Company.contacts`).
pub struct CompanyContactsLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl CompanyContactsLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        CompanyContactsLoader { app, viewer }
    }
}

impl Loader<CompanyId> for CompanyContactsLoader {
    type Value = Vec<Contact>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[CompanyId],
    ) -> Result<HashMap<CompanyId, Vec<Contact>>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let contacts = self
            .app
            .crm
            .contacts_of_companies(viewer, &ids)
            .await
            .map_err(to_graphql_error)?;
        let mut by_company: HashMap<CompanyId, Vec<Contact>> = HashMap::new();
        for contact in contacts {
            if let Some(company) = contact.company_id {
                by_company.entry(company).or_default().push(contact);
            }
        }
        Ok(by_company)
    }
}

/// Loads contacts referenced by records, as the caller may see them.
pub struct ContactLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl ContactLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        ContactLoader { app, viewer }
    }
}

impl Loader<ContactId> for ContactLoader {
    type Value = Contact;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[ContactId]) -> Result<HashMap<ContactId, Contact>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let ids: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let found = self
            .app
            .crm
            .contacts_by_ids(viewer, &ids)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|c| (c.id, c)).collect())
    }
}
