//! The CSV routes of the REST shim (bearer token auth, like the original MyCRM's /api/v1):
//! streamed exports and import templates. Errors are JSON (`http::errors`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::client::{auth_state, bearer};
use super::AppState;
use crate::app::App;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::graphql::context::AuthState;
use crate::imports::columns::Resource;
use crate::imports::export::{self, Export, PAGE_ROWS};

/// The caller of a REST route: a valid access token, or UNAUTHENTICATED.
async fn rest_viewer(app: &App, headers: &HeaderMap) -> AppResult<Viewer> {
    match auth_state(app, bearer(headers)).await {
        AuthState::Authenticated(viewer) => Ok(viewer),
        AuthState::Anonymous => Err(AppError::unauthenticated(
            "authentication required: send an access token as `Authorization: Bearer <token>`",
        )),
        AuthState::Rejected(message) => Err(AppError::unauthenticated(message)),
    }
}

fn resource(segment: &str) -> AppResult<Resource> {
    Resource::parse(segment).ok_or(AppError::NotFound("resource"))
}

/// `text/csv` with a download name.
fn csv_response(filename: &str, body: Body) -> Response {
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
/// caller may see, streamed page by page. Parameters are checked and the first page read
/// before the answer starts, so those errors get a proper status; a failure later ends the
/// download early (the client sees a broken transfer, never a short file that looks whole).
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
    let mut conn = app.db.get().await?;
    let export = Export::prepare(&mut conn, &viewer, resource, params).await?;
    let first = export.page(&mut conn, 0).await?;
    let filename = export.filename(chrono::Utc::now());
    // Two chunks in flight at most: a slow client slows the reading down, memory stays flat.
    let (chunks, receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        let mut page = first;
        if chunks
            .send(Ok(Bytes::from(export.header_csv())))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let (last, full) = (page.last_id, page.rows as i64 == PAGE_ROWS);
            if chunks.send(Ok(Bytes::from(page.csv))).await.is_err() {
                return;
            }
            let Some(last) = last.filter(|_| full) else {
                return;
            };
            page = match export.page(&mut conn, last).await {
                Ok(page) => page,
                Err(err) => {
                    err.log_if_internal();
                    let _ = chunks
                        .send(Err(std::io::Error::other("the export failed")))
                        .await;
                    return;
                }
            };
        }
    });
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    Ok(csv_response(&filename, Body::from_stream(stream)))
}
