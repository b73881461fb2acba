//! A schema extension that (1) enforces the depth and complexity limits with clear, coded errors
//! and (2) gives every error async-graphql raises by itself an `extensions.code`.
//!
//! Depth is measured on the parsed document, skipping introspection (`__schema`, `__type`),
//! so GraphiQL's deep introspection query is not refused while data queries are.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};

use super::errors::{
    ensure_code, server_error, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, QUERY_TOO_COMPLEX,
    QUERY_TOO_DEEP,
};
use crate::config::GraphqlLimits;
use crate::error::ErrorCode;

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
        let depth = document_depth(&document, self.0.max_depth + 1);
        if depth > self.0.max_depth {
            return Err(server_error(
                format!(
                    "query is nested too deeply: it exceeds the depth limit of {}",
                    self.0.max_depth
                ),
                QUERY_TOO_DEEP,
            ));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| ensure_code(e, GRAPHQL_VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        if result.complexity > self.0.max_complexity {
            return Err(vec![server_error(
                format!(
                    "query is too complex: complexity {} exceeds the limit of {}",
                    result.complexity, self.0.max_complexity
                ),
                QUERY_TOO_COMPLEX,
            )]);
        }
        Ok(result)
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        // Resolvers always attach a code (errors::to_graphql_error); what is left is
        // async-graphql rejecting an argument value, i.e. the client's input.
        response.errors = std::mem::take(&mut response.errors)
            .into_iter()
            .map(|e| ensure_code(e, ErrorCode::BadUserInput.as_str()))
            .collect();
        response
    }
}

/// The deepest field nesting of any operation, not counting introspection, capped at `cap`
/// (which also stops fragment cycles, rejected later by validation anyway).
fn document_depth(document: &ExecutableDocument, cap: usize) -> usize {
    document
        .operations
        .iter()
        .map(|(_, op)| {
            set_depth(
                document,
                &op.node.selection_set.node,
                0,
                cap,
                &mut HashSet::new(),
            )
        })
        .max()
        .unwrap_or(0)
}

fn set_depth<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    current: usize,
    cap: usize,
    visiting: &mut HashSet<&'a str>,
) -> usize {
    if current >= cap {
        return current;
    }
    let mut deepest = current;
    for selection in &set.items {
        let depth = match &selection.node {
            Selection::Field(field) => {
                if field.node.name.node.starts_with("__") {
                    continue;
                }
                set_depth(
                    document,
                    &field.node.selection_set.node,
                    current + 1,
                    cap,
                    visiting,
                )
            }
            Selection::InlineFragment(fragment) => set_depth(
                document,
                &fragment.node.selection_set.node,
                current,
                cap,
                visiting,
            ),
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node) else {
                    continue;
                };
                if !visiting.insert(name) {
                    continue;
                }
                let depth = set_depth(
                    document,
                    &fragment.node.selection_set.node,
                    current,
                    cap,
                    visiting,
                );
                visiting.remove(name);
                depth
            }
        };
        deepest = deepest.max(depth);
    }
    deepest
}
