//! The CSV routes of the REST shim (bearer token auth, like the original MyCRM's /api/v1):
//! streamed exports and import templates. Errors are JSON (`http::errors`).

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::{future, stream, StreamExt, TryStreamExt};
use std::sync::Arc;

use super::client::{auth_state, bearer};
use super::AppState;
use crate::app::App;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::imports::columns::Resource;
use crate::imports::export::{self, Export, Page, PAGE_ROWS};

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

/// Where an export's download stands.
enum Next {
    /// A page read and not yet sent.
    Ready(Page),
    /// Read the page after this ID.
    After(i64),
    Done,
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
    drop(conn);
    let filename = export.filename(chrono::Utc::now());
    let header = Bytes::from(export.header_csv());
    // The body pulls the next page only when the client has taken the previous one, so memory
    // stays flat however slow the client; each page takes a pooled connection for its query.
    let (db, export) = (app.db.clone(), Arc::new(export));
    let pages = stream::try_unfold(Next::Ready(first), move |next| {
        let (db, export) = (db.clone(), export.clone());
        async move {
            let page = match next {
                Next::Ready(page) => page,
                Next::After(last) => export.page(&mut *db.get().await?, last).await?,
                Next::Done => return Ok(None),
            };
            let next = match page.last_id {
                Some(last) if page.rows as i64 == PAGE_ROWS => Next::After(last),
                _ => Next::Done,
            };
            Ok::<_, AppError>(Some((Bytes::from(page.csv), next)))
        }
    })
    .map_err(|err| {
        err.log_if_internal();
        std::io::Error::other("the export failed")
    });
    let stream = stream::once(future::ready(Ok(header))).chain(pages);
    Ok(csv_response(&filename, Body::from_stream(stream)))
}
