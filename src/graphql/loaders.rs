//! Per-request DataLoaders: they batch lookups and see only what the caller may see.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;

use super::errors::to_graphql_error;
use crate::app::App;
use crate::auth::{Viewer, Workspace, WorkspaceId};

pub struct WorkspaceLoader {
    app: Arc<App>,
    viewer: Option<Viewer>,
}

impl WorkspaceLoader {
    pub fn new(app: Arc<App>, viewer: Option<Viewer>) -> Self {
        WorkspaceLoader { app, viewer }
    }
}

impl Loader<WorkspaceId> for WorkspaceLoader {
    type Value = Workspace;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[WorkspaceId],
    ) -> Result<HashMap<WorkspaceId, Workspace>, Self::Error> {
        let Some(viewer) = &self.viewer else {
            return Ok(HashMap::new());
        };
        let found = self
            .app
            .auth
            .workspaces_by_ids(viewer, keys)
            .await
            .map_err(to_graphql_error)?;
        Ok(found.into_iter().map(|w| (w.id, w)).collect())
    }
}
