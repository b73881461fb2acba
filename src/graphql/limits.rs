//! The query limits (depth, complexity) and the codes for errors async-graphql raises by
//! itself, in one place for both ways a query arrives:
//!
//! - over HTTP, [`admit`] checks the parsed document before execution and [`code_errors`]
//!   codes what the schema answered. The HTTP schema has no extension on purpose: with any
//!   extension installed, async-graphql looks every field's type up in its registry and runs
//!   the extension chain for every field of every row (5–7% of a 50-row page's server time,
//!   BENCHMARKS.md), and without one it resolves fields directly;
//! - over WebSocket, async-graphql-axum executes the operation itself, so that schema carries
//!   [`super::extension::Limits`], which calls the same functions from its hooks.
//!
//! Depth is measured on the parsed document, skipping introspection (`__schema`, `__type`),
//! so GraphiQL's deep introspection query is not refused while data queries are. Complexity is
//! async-graphql's own (`SchemaBuilder::limit_complexity`), which knows each field's cost.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, Variables};

use super::documents::DocumentCache;
use super::errors::{
    ensure_code, has_code, server_error, GRAPHQL_VALIDATION_FAILED, QUERY_TOO_COMPLEX,
};
use super::input_errors::{field_of_validation_error, InputTypes};
use super::screen::{screen_document, FieldTypes};
use crate::config::GraphqlLimits;
use crate::error::ErrorCode;

/// Where async-graphql's suggestion starts in a validation message.
const SUGGESTION: &str = " Did you mean";

/// What async-graphql says when `limit_complexity` refuses a document.
const LIBRARY_TOO_COMPLEX: &str = "Query is too complex.";

/// Gives the request its parsed document (remembered across requests, see
/// [`super::documents`]) and screens it ([`super::screen`]: nesting, depth, cost, input
/// values), before async-graphql validates it. Returns the
/// document, to name the fields of input errors afterwards ([`Asked`]).
pub fn admit(
    request: &mut Request,
    limits: &GraphqlLimits,
    documents: &DocumentCache,
    types: &FieldTypes,
) -> Result<Arc<ExecutableDocument>, ServerError> {
    let document = documents.parse(&request.query, limits)?;
    screen_document(&document, &request.variables, limits, types)?;
    request.set_parsed_query(ExecutableDocument::clone(&document));
    Ok(document)
}

/// What a request asked, kept to name the input field of an error async-graphql raised while
/// reading the arguments (see [`super::input_errors`]).
pub struct Asked<'a> {
    pub types: &'a InputTypes,
    pub document: &'a ExecutableDocument,
    pub operation_name: Option<&'a str>,
    pub variables: &'a Variables,
}

/// A validation error with its code; the complexity refusal gets its own code and says the
/// limit.
///
/// For an anonymous caller, async-graphql's suggestions ("Did you mean "email"?") are cut:
/// they would map the schema for someone who may not use it. Signed-in developers keep them.
pub fn coded_validation_error(
    mut error: ServerError,
    limits: &GraphqlLimits,
    anonymous: bool,
) -> ServerError {
    if anonymous {
        if let Some(at) = error.message.find(SUGGESTION) {
            error.message.truncate(at);
        }
    }
    if error.message == LIBRARY_TOO_COMPLEX {
        return server_error(
            format!(
                "query is too complex: it exceeds the complexity limit of {}",
                limits.max_complexity
            ),
            QUERY_TOO_COMPLEX,
        );
    }
    match field_of_validation_error(&error.message) {
        // An argument's value was refused (say an unknown enumeration value): bad input.
        Some(field) => with_field(ensure_code(error, ErrorCode::BadUserInput.as_str()), &field),
        None => ensure_code(error, GRAPHQL_VALIDATION_FAILED),
    }
}

/// An error raised while executing, with its code. Resolvers always attach one
/// (`errors::to_graphql_error`); what is left is async-graphql rejecting an argument value,
/// i.e. the client's input, whose field `asked` can name.
pub fn coded_execution_error(error: ServerError, asked: Option<&Asked<'_>>) -> ServerError {
    if has_code(&error) {
        return error;
    }
    let field = asked.and_then(|asked| {
        asked.types.field_of_execution_error(
            &error,
            asked.document,
            asked.operation_name,
            asked.variables,
        )
    });
    let error = ensure_code(error, ErrorCode::BadUserInput.as_str());
    match field {
        Some(field) => with_field(error, &field),
        None => error,
    }
}

/// Codes the errors of a response the extension-free schema produced. Errors of the document
/// as a whole (validation, an unknown operation name) have no path; errors of a field have
/// one.
pub fn code_errors(
    response: &mut Response,
    limits: &GraphqlLimits,
    asked: Option<&Asked<'_>>,
    anonymous: bool,
) {
    response.errors = std::mem::take(&mut response.errors)
        .into_iter()
        .map(|error| {
            if error.path.is_empty() {
                coded_validation_error(error, limits, anonymous)
            } else {
                coded_execution_error(error, asked)
            }
        })
        .collect();
}

fn with_field(mut error: ServerError, field: &str) -> ServerError {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("field").is_none() {
        ext.set("field", field);
    }
    error
}
