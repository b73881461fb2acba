//! The schema extension for operations that arrive over WebSocket, where async-graphql-axum
//! executes them itself: it applies the rules of [`super::limits`] from the extension hooks.
//! (The HTTP schema has no extension; its handler applies the same rules around execution.)

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};

use super::errors::{ensure_code, GRAPHQL_PARSE_FAILED};
use super::limits::{check_depth, coded_execution_error, coded_validation_error};
use crate::config::GraphqlLimits;

pub struct Limits(pub GraphqlLimits);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0.clone()))
    }
}

struct LimitsExtension(GraphqlLimits);

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| ensure_code(e, GRAPHQL_PARSE_FAILED))?;
        check_depth(&document, &self.0)?;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| coded_validation_error(e, &self.0))
                .collect()
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            // The extension sees no arguments here: such errors keep their code, no field.
            .map(|e| coded_execution_error(e, None))
            .collect();
        response
    }
}
