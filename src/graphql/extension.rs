//! The schema extension for operations that arrive over WebSocket, where async-graphql-axum
//! executes them itself: it applies the rules of [`super::limits`] from the extension hooks.
//! (The HTTP schema has no extension; its handler applies the same rules around execution.)

use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};

use super::context::AuthState;
use super::errors::{ensure_code, GRAPHQL_PARSE_FAILED};
use super::input_errors::InputTypes;
use super::limits::{coded_execution_error, coded_validation_error, Asked};
use super::screen::{screen_document, screen_text, FieldTypes};
use crate::config::GraphqlLimits;

/// The limits, every argument's declared type (to name the field of input errors) and every
/// field's type (to count the fields that read lists).
pub struct Limits(pub GraphqlLimits, pub Arc<InputTypes>, pub Arc<FieldTypes>);

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            limits: self.0.clone(),
            types: self.1.clone(),
            fields: self.2.clone(),
            asked: Mutex::new(None),
        })
    }
}

/// One operation's extension (the factory makes one per operation).
struct LimitsExtension {
    limits: GraphqlLimits,
    types: Arc<InputTypes>,
    fields: Arc<FieldTypes>,
    /// The operation's document and variables, kept from parsing to name the field of an
    /// input error after execution.
    asked: Mutex<Option<(ExecutableDocument, Variables)>>,
}

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        // The same screens as over HTTP (`limits::admit`): nesting on the text before the
        // parser recurses over it, then the document's cost and its input values. The
        // document is parsed here rather than by `next`: async-graphql's own step after
        // parsing (`check_recursive_depth`) walks every fragment spread anew, which is
        // exponential in a chain of fragments; the screen bounds the same depth linearly.
        let _ = (ctx, next);
        screen_text(query, &self.limits)?;
        let document = async_graphql::parser::parse_query(query)
            .map_err(|e| ensure_code(e.into(), GRAPHQL_PARSE_FAILED))?;
        screen_document(&document, variables, &self.limits, &self.fields)?;
        if let Ok(mut asked) = self.asked.lock() {
            *asked = Some((document.clone(), variables.clone()));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let anonymous = !matches!(
            ctx.data_opt::<AuthState>(),
            Some(AuthState::Authenticated(_))
        );
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| coded_validation_error(e, &self.limits, anonymous))
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
        if response.errors.is_empty() {
            return response;
        }
        let kept = self.asked.lock().ok().and_then(|mut asked| asked.take());
        let asked = kept.as_ref().map(|(document, variables)| Asked {
            types: &self.types,
            document,
            operation_name,
            variables,
        });
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(|e| coded_execution_error(e, asked.as_ref()))
            .collect();
        response
    }
}
