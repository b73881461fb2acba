//! Per-request DataLoaders: they batch lookups and see only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::errors::to_graphql_error;
use crate::app::App;
use crate::auth::{User, UserId, Viewer, Workspace, WorkspaceId};
use crate::crm::activities::{Activity, RecordRef};
use crate::crm::query::{CompanyChild, Listable};

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

/// Loads the records of one kind that belong to many companies in one query
/// (`Company.contacts`, `Company.opportunities`).
pub struct CompanyRecordsLoader<R> {
    app: Arc<App>,
    viewer: Option<Viewer>,
    _kind: std::marker::PhantomData<fn() -> R>,
}

impl<R> CompanyRecordsLoader<R> {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        CompanyRecordsLoader {
            app,
            viewer,
            _kind: std::marker::PhantomData,
        }
    }
}

impl<R: CompanyChild + Clone + Sync> Loader<i64> for CompanyRecordsLoader<R> {
    type Value = Vec<R>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Vec<R>>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let records = self
            .app
            .crm
            .records_of_companies::<R>(viewer, keys)
            .await
            .map_err(to_graphql_error)?;
        let mut by_company: HashMap<i64, Vec<R>> = HashMap::new();
        for record in records {
            if let Some(company) = record.company() {
                by_company.entry(company).or_default().push(record);
            }
        }
        Ok(by_company)
    }
}

/// Loads records of one kind by ID (`Contact.company`, `Task.lead`, ...), as the caller may
/// see them: one query per kind per request, and an invisible record is simply absent.
pub struct RecordLoader<R> {
    app: Arc<App>,
    viewer: Option<Viewer>,
    _kind: std::marker::PhantomData<fn() -> R>,
}

impl<R> RecordLoader<R> {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        RecordLoader {
            app,
            viewer,
            _kind: std::marker::PhantomData,
        }
    }
}

impl<R: Listable + Clone + Sync> Loader<i64> for RecordLoader<R> {
    type Value = R;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, R>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let found = self
            .app
            .crm
            .records_by_ids::<R>(viewer, keys)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|r| (r.id(), r)).collect())
    }
}

/// Loads the newest activities of many records in one query per kind of record.
pub struct ActivitiesLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl ActivitiesLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        ActivitiesLoader { app, viewer }
    }
}

impl Loader<RecordRef> for ActivitiesLoader {
    type Value = Vec<Activity>;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[RecordRef],
    ) -> Result<HashMap<RecordRef, Vec<Activity>>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        self.app
            .crm
            .activities_of(viewer, keys)
            .await
            .map_err(to_graphql_error)
    }
}
