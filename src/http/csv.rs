//! The CSV routes of the REST shim (bearer token auth, like the original MyCRM's /api/v1):
//! streamed exports and import templates. Errors are JSON (`http::errors`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{future, stream, StreamExt};

use super::client::{auth_state, bearer};
use super::AppState;
use crate::app::App;
use crate::auth::Viewer;
use crate::db::copy::copy_out;
use crate::error::{AppError, AppResult};
use crate::imports::columns::Resource;
use crate::imports::export::{self, Export};

/// The caller of a REST route: a valid access token, or UNAUTHENTICATED.
pub(super) async fn rest_viewer(app: &App, headers: &HeaderMap) -> AppResult<Viewer> {
    auth_state(app, bearer(headers)).await.require().cloned()
}

pub(super) fn resource(segment: &str) -> AppResult<Resource> {
    Resource::parse(segment).ok_or(AppError::NotFound("resource"))
}

/// `text/csv` with a download name.
pub(super) fn csv_response(filename: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `GET /api/v1/import/{resource}/`: the import template.
pub async fn template(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        rest_viewer(&state.app, &headers).await?;
        resource(&segment)
    }
    .await;
    match answer {
        Ok(resource) => csv_response(
            &format!("{}_template.csv", resource.name()),
            Body::from(export::template(resource)),
        ),
        Err(err) => err.into_response(),
    }
}

/// `GET /api/v1/export/{resource}/?<filters>&fields=a,b,c`: every record of the kind the
/// caller may see, written by PostgreSQL's COPY and streamed as it comes. Parameters are
/// checked and the COPY started before the answer starts, so those errors get a proper
/// status; a failure later ends the download early (the client sees a broken transfer, never
/// a short file that looks whole).
pub async fn export(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    match start_export(&state.app, &segment, &params, &headers).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn start_export(
    app: &App,
    segment: &str,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> AppResult<Response> {
    let viewer = rest_viewer(app, headers).await?;
    let resource = resource(segment)?;
    for (name, value) in params {
        crate::validation::reject_nul(name, value)?;
    }
    // A COPY holds its own connection until the client has read the last row.
    let slot = app
        .export_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| AppError::RateLimited {
            message: "too many exports are running; try again shortly".into(),
            retry_after_secs: 5,
        })?;
    let export = Export::prepare(&mut *app.db.get().await?, &viewer, resource, params).await?;
    let rows = copy_out(&app.database_url, &export.copy_statement()?)
        .await
        .map_err(|e| AppError::internal(anyhow::anyhow!(e)))?;
    let filename = export.filename(chrono::Utc::now());
    let header = Bytes::from(export.header_csv());
    let rows = rows.map(move |chunk| {
        let _slot = &slot;
        chunk.map(Bytes::from).map_err(|err| {
            AppError::internal(anyhow::anyhow!(err)).log_if_internal();
            std::io::Error::other("the export failed")
        })
    });
    let stream = stream::once(future::ready(Ok(header))).chain(rows);
    Ok(csv_response(&filename, Body::from_stream(stream)))
}
