//! GraphQL over HTTP: `POST /graphql` (JSON, single or batched), `GET /graphql` (queries only),
//! and GraphiQL for browsers. Transport failures (oversize or malformed bodies) are answered
//! in the GraphQL error shape with a code, like every other error.

use std::net::SocketAddr;

use async_graphql::{BatchRequest, BatchResponse, Request};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::body::{parse_json, BodyError};
use super::client::{auth_state, bearer, client_info};
use super::playground;
use super::AppState;
use crate::error::ErrorCode;
use crate::graphql::context::{request_data, AuthState, Lifetime};
use crate::graphql::{limits, screen};

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
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return body_error(BodyError::TooLarge { limit });
    };
    // Counted before deserializing: building async-graphql's values is the costly part.
    if let Err(error) = screen::screen_json_body(&bytes) {
        let body = json!({ "errors": [error] });
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let batch: BatchRequest = match parse_json(
        &bytes,
        "a GraphQL request {\"query\", \"variables\", \"operationName\"} or a list of them",
    ) {
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
    execute_in_time(&state, &headers, peer, batch).await
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
            return playground::graphiql();
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
    execute_in_time(&state, &headers, peer, BatchRequest::Single(request)).await
}

/// Executes within the request timeout. When it passes, the work is dropped where it stands
/// (a statement in flight is also bounded by PostgreSQL's `statement_timeout`), and the
/// client is told TIMEOUT. A client that disconnects drops the work the same way.
async fn execute_in_time(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    batch: BatchRequest,
) -> Response {
    let limit = state.app.config.http.request_timeout;
    match tokio::time::timeout(limit, execute(state, headers, peer, batch)).await {
        Ok(response) => response,
        Err(_) => transport_error(
            StatusCode::OK,
            ErrorCode::Timeout.as_str(),
            format!(
                "the request took longer than {} seconds and was stopped; narrow it (a filter, \
                 a smaller page) or split it",
                limit.as_secs()
            ),
        ),
    }
}

/// Whether the document holds a mutation or subscription. Documents that do not parse (or
/// are refused by the text screen) pass: execution reports them with their code.
fn changes_state(state: &AppState, request: &Request) -> bool {
    state
        .documents
        .parse(&request.query, &state.app.config.graphql)
        .is_ok_and(|document| screen::changes_state(&document))
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
    batch: BatchRequest,
) -> Response {
    let auth = auth_state(&state.app, bearer(headers)).await;
    let client = client_info(headers, peer, state.app.config.http.trust_forwarded_for);
    let anonymous = !matches!(auth, AuthState::Authenticated(_));
    let run = |mut request: Request| {
        request.data = request_data(
            state.app.clone(),
            auth.clone(),
            client.clone(),
            Lifetime::Request,
        );
        execute_one(state, request, anonymous)
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
async fn execute_one(
    state: &AppState,
    mut request: Request,
    anonymous: bool,
) -> async_graphql::Response {
    let limits = &state.app.config.graphql;
    let document = match limits::admit(&mut request, limits, &state.documents, &state.field_types) {
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
    limits::code_errors(&mut response, limits, Some(&asked), anonymous);
    response
}
