//! Per-request DataLoaders: they batch lookups and see only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::errors::to_graphql_error;
use crate::app::App;
use crate::auth::{Workspace, WorkspaceId};

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
