//! GraphQL over HTTP: `POST /graphql` (JSON, single or batched), `GET /graphql` (queries only),
//! and GraphiQL for browsers. Transport failures (oversize or malformed bodies) are answered
//! in the GraphQL error shape with a code, like every other error.

use std::net::SocketAddr;

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Request};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::{read_json, BodyError};
use super::client::{auth_state, bearer, client_info};
use super::playground;
use super::AppState;
use crate::graphql::context::{request_data, Lifetime};
use crate::graphql::limits;

/// Most operations one batched POST may carry.
pub const MAX_BATCH: usize = 10;

/// A GraphQL-shaped error answer for failures before execution.
fn transport_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "errors": [{ "message": message.into(), "extensions": { "code": code } }] });
    (status, Json(body)).into_response()
}

fn body_error(err: BodyError) -> Response {
    match err {
        BodyError::TooLarge { .. } => transport_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            err.message(),
        ),
        other => transport_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", other.message()),
    }
}

pub async fn post_graphql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.app.config.http.body_limit_bytes;
    let batch: BatchRequest = match read_json(
        body,
        limit,
        "a GraphQL request {\"query\", \"variables\", \"operationName\"} or a list of them",
    )
    .await
    {
        Ok(batch) => batch,
        Err(err) => return body_error(err),
    };
    if let BatchRequest::Batch(requests) = &batch {
        if requests.is_empty() || requests.len() > MAX_BATCH {
            return transport_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("a batch must hold 1 to {MAX_BATCH} operations"),
            );
        }
    }
    execute(&state, &headers, peer, batch).await
}

pub async fn get_graphql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if query.is_empty() {
        if wants_html {
            return Html(playground::INDEX_HTML).into_response();
        }
        return transport_error(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "send ?query=... (queries only) or POST a JSON body",
        );
    }
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(request) => request,
        Err(err) => {
            return transport_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", err.to_string())
        }
    };
    // GET must not change anything (it can be triggered by links and prefetchers).
    if changes_state(&state, &request) {
        return transport_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BAD_REQUEST",
            "mutations and subscriptions must be sent with POST",
        );
    }
    execute(&state, &headers, peer, BatchRequest::Single(request)).await
}

/// Whether the document holds a mutation or subscription. Unparsable documents pass: execution
/// reports the syntax error with its code.
fn changes_state(state: &AppState, request: &Request) -> bool {
    state
        .documents
        .parse(&request.query)
        .map(|doc| {
            doc.operations
                .iter()
                .any(|(_, op)| op.node.ty != OperationType::Query)
        })
        .unwrap_or(false)
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    batch: BatchRequest,
) -> Response {
    let auth = auth_state(&state.app, bearer(headers)).await;
    let client = client_info(headers, peer, state.app.config.http.trust_forwarded_for);
    let run = |mut request: Request| {
        request.data = request_data(
            state.app.clone(),
            auth.clone(),
            client.clone(),
            Lifetime::Request,
        );
        execute_one(state, request)
    };
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
        BatchRequest::Batch(requests) => {
            // One after the other, as async-graphql's own `execute_batch` does.
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(run(request).await);
            }
            BatchResponse::Batch(responses)
        }
    };
    Json(response).into_response()
}

/// One operation through the extension-free schema, with the limits and error codes applied
/// around it (`graphql::limits`).
async fn execute_one(state: &AppState, mut request: Request) -> async_graphql::Response {
    let limits = &state.app.config.graphql;
    let document = match limits::admit(&mut request, limits, &state.documents) {
        Ok(document) => document,
        Err(error) => return async_graphql::Response::from_errors(vec![error]),
    };
    // Kept to name the field of an input error; requests rarely carry more than a few small
    // variables, and the common read sends none.
    let operation_name = request.operation_name.clone();
    let variables = request.variables.clone();
    let mut response = state.schema.execute(request).await;
    let asked = limits::Asked {
        types: &state.input_types,
        document: &document,
        operation_name: operation_name.as_deref(),
        variables: &variables,
    };
    limits::code_errors(&mut response, limits, Some(&asked));
    response
}
