//! `POST /api/v1/import/{resource}/` (multipart upload) and
//! `GET /api/v1/import/{import_id}/errors.csv`. The upload is stored as it arrives, never held
//! whole in memory; past the configured size the answer is 413 and nothing is kept.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::{future, stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};

use super::csv::{csv_response, resource, rest_viewer};
use super::AppState;
use crate::app::App;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::imports::columns::Resource;
use crate::imports::decode;
use crate::imports::export::neutralise;
use crate::imports::service::Upload;
use crate::imports::store::{FailedRow, ImportRow, MatchOn, Options};

/// Most error details in an answer; errors.csv has them all.
const MAX_DETAILS: i64 = 1000;
/// Largest non-file form field (a mapping).
const MAX_FIELD_BYTES: usize = 256 * 1024;
/// Failed rows per page of errors.csv.
const ERROR_PAGE: i64 = 5000;
/// The file's first bytes kept to tell its encoding (and its first line's NUL bytes).
const HEAD_BYTES: usize = 4096;

/// Why an upload request failed.
enum Refusal {
    TooLarge(u64),
    /// The file is not text this server can read (compressed, a workbook, binary): 415.
    NotText(String),
    App(AppError),
}

impl From<AppError> for Refusal {
    fn from(err: AppError) -> Self {
        Refusal::App(err)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::App(err) => err.into_response(),
            Refusal::TooLarge(limit) => super::errors::payload_too_large(
                format!("the upload is larger than the limit of {limit} bytes"),
                Some("file"),
            ),
            Refusal::NotText(message) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Json(json!({ "error": {
                    "code": "UNSUPPORTED_MEDIA_TYPE", "field": "file", "message": message
                } })),
            )
                .into_response(),
        }
    }
}

/// `POST /api/v1/import/{resource}/`.
pub async fn import(
    State(state): State<AppState>,
    Path(segment): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match run_import(&state.app, &segment, &headers, multipart).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

async fn run_import(
    app: &App,
    segment: &str,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Refusal> {
    let viewer = rest_viewer(app, headers).await?;
    let resource = resource(segment)?;
    let limit = app.imports.max_upload_bytes();
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Multipart framing adds a little; anything well past the limit is refused unread.
    if declared.is_some_and(|len| len > limit + 64 * 1024) {
        return Err(Refusal::TooLarge(limit));
    }
    let mut multipart = multipart.map_err(|_| {
        AppError::bad_input(
            "file",
            "send the file as multipart/form-data with a `file` field",
        )
    })?;
    let mut form = Form::default();
    let mut upload: Option<Upload> = None;
    let read = read_form(
        app,
        &viewer,
        resource,
        &mut multipart,
        &mut form,
        &mut upload,
    )
    .await;
    let outcome = match read {
        Ok(()) => match upload.take() {
            None => Err(AppError::bad_input("file", "the form has no `file` field").into()),
            Some(file) => match decode::detect(&form.head) {
                Err(message) => {
                    app.imports.discard(file).await?;
                    Err(Refusal::NotText(message))
                }
                Ok(_) => match form.options(resource) {
                    Ok(options) => app
                        .imports
                        .submit(&viewer, file, options)
                        .await
                        .map_err(Refusal::App),
                    Err(err) => {
                        app.imports.discard(file).await?;
                        Err(err.into())
                    }
                },
            },
        },
        Err(refusal) => {
            if let Some(file) = upload.take() {
                app.imports.discard(file).await?;
            }
            Err(refusal)
        }
    }?;
    let import = &outcome.import;
    let details = app
        .imports
        .failed_rows(&viewer, import.id, 0, MAX_DETAILS + 1)
        .await?;
    let mut body = answer(import, outcome.job_id, &details);
    let status = match (&outcome.job_id, &import.failure) {
        (Some(_), _) => StatusCode::ACCEPTED,
        // The file itself could not be imported (empty, duplicate headers, a bad mapping).
        (None, Some(failure)) if import.total_rows == 0 => {
            body["error"] =
                json!({ "code": "BAD_USER_INPUT", "field": "file", "message": failure });
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    Ok((status, Json(body)).into_response())
}

/// The form's fields other than the file, and the file's first bytes (to tell its encoding).
#[derive(Default)]
struct Form {
    head: Vec<u8>,
    mapping: Option<String>,
    update_existing: Option<String>,
    match_on: Option<String>,
    skip_errors: Option<String>,
    dry_run: Option<String>,
}

impl Form {
    fn options(&self, resource: Resource) -> AppResult<Options> {
        let mapping: HashMap<String, Option<String>> = match self.mapping.as_deref().map(str::trim)
        {
            None | Some("") => HashMap::new(),
            Some(text) => serde_json::from_str(text).map_err(|_| {
                AppError::bad_input(
                    "mapping",
                    "mapping must be a JSON object of CSV header to field name (or null)",
                )
            })?,
        };
        Ok(Options {
            mapping,
            update_existing: flag("update_existing", &self.update_existing, false)?,
            match_on: MatchOn::parse(resource, self.match_on.as_deref())?,
            skip_errors: flag("skip_errors", &self.skip_errors, true)?,
            dry_run: flag("dry_run", &self.dry_run, false)?,
        })
    }
}

/// A yes/no form field; absent or empty takes the default.
fn flag(name: &str, value: &Option<String>, default: bool) -> AppResult<bool> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => crate::validation::flag(name, text),
    }
}

async fn read_form(
    app: &App,
    viewer: &Viewer,
    resource: Resource,
    multipart: &mut Multipart,
    form: &mut Form,
    upload: &mut Option<Upload>,
) -> Result<(), Refusal> {
    let limit = app.imports.max_upload_bytes();
    let broken = |err: axum::extract::multipart::MultipartError| {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::TooLarge(limit)
        } else {
            Refusal::App(AppError::bad_input(
                "file",
                "the multipart form could not be read",
            ))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            if upload.is_some() {
                return Err(AppError::bad_input("file", "send one file per import").into());
            }
            let file_name = field.file_name().unwrap_or("upload.csv").to_string();
            let file = upload.insert(
                app.imports
                    .start_upload(viewer, resource, &file_name)
                    .await?,
            );
            while let Some(chunk) = field.chunk().await.map_err(broken)? {
                if file.bytes() + chunk.len() as u64 > limit {
                    return Err(Refusal::TooLarge(limit));
                }
                let room = HEAD_BYTES.saturating_sub(form.head.len());
                form.head.extend_from_slice(&chunk[..room.min(chunk.len())]);
                app.imports.append(file, &chunk).await?;
            }
            continue;
        }
        let slot = match name.as_str() {
            "mapping" => &mut form.mapping,
            "update_existing" => &mut form.update_existing,
            "match_on" => &mut form.match_on,
            "skip_errors" => &mut form.skip_errors,
            "dry_run" => &mut form.dry_run,
            other => {
                return Err(AppError::bad_input(
                    other,
                    format!(
                        "unknown form field {other:?}; the fields are file, mapping, \
                         update_existing, match_on, skip_errors and dry_run"
                    ),
                )
                .into())
            }
        };
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            text.extend_from_slice(&chunk);
            if text.len() > MAX_FIELD_BYTES {
                return Err(AppError::bad_input(&name, format!("{name} is too long")).into());
            }
        }
        *slot = Some(
            String::from_utf8(text)
                .map_err(|_| AppError::bad_input(&name, format!("{name} must be UTF-8 text")))?,
        );
    }
    Ok(())
}

/// Every problem of the failed rows as `{row, column, value, error}`.
fn details(rows: &[FailedRow]) -> Vec<Value> {
    rows.iter()
        .flat_map(|r| {
            r.problems.iter().map(move |p| {
                json!({ "row": r.line, "column": p.column, "value": p.value, "error": p.error })
            })
        })
        .collect()
}

/// The answer of an upload: the import's totals and its first failed rows.
fn answer(import: &ImportRow, job_id: Option<i64>, failed: &[FailedRow]) -> Value {
    let truncated = failed.len() as i64 > MAX_DETAILS;
    let shown = &failed[..failed.len().min(MAX_DETAILS as usize)];
    let finished = import.status == "completed";
    let options = import.options().ok();
    let all_or_nothing = options.as_ref().is_some_and(|o| !o.skip_errors);
    json!({
        "success": finished && !(all_or_nothing && import.errors > 0),
        "import_id": import.id,
        "job_id": job_id.or(import.job_id),
        "status": import.status,
        "dry_run": import.dry_run,
        "file_name": import.file_name,
        "total_rows": import.total_rows,
        "imported": import.imported,
        "updated": import.updated,
        "skipped": import.skipped,
        "errors": import.errors,
        "failure": import.failure,
        "error_details": details(shown),
        "error_details_truncated": truncated,
        "columns": import.columns,
        "ignored_columns": import.ignored_columns,
    })
}

/// `GET /api/v1/import/{import_id}/errors.csv`: every failed row as `line,errors,<the file's
/// columns>`, so it can be fixed and imported again as it is.
pub async fn errors_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match start_errors_csv(&state.app, &id, &headers).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn start_errors_csv(app: &App, id: &str, headers: &HeaderMap) -> AppResult<Response> {
    let viewer = rest_viewer(app, headers).await?;
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("import"))?;
    let import = app.imports.import(&viewer, id).await?;
    let mut header = csv::Writer::from_writer(Vec::new());
    let _ = header.write_record(
        ["line", "errors"]
            .into_iter()
            .map(str::to_string)
            .chain(import.headers.iter().map(|h| neutralise(h).into_owned())),
    );
    let header = Bytes::from(header.into_inner().unwrap_or_default());
    let imports = app.imports.clone();
    let pages = stream::try_unfold(Some(0u64), move |after| {
        let (imports, viewer) = (imports.clone(), viewer.clone());
        async move {
            let Some(after) = after else { return Ok(None) };
            let rows = imports.failed_rows(&viewer, id, after, ERROR_PAGE).await?;
            let next = (rows.len() as i64 == ERROR_PAGE)
                .then(|| rows.last().map(|r| r.line))
                .flatten();
            if rows.is_empty() {
                return Ok(None);
            }
            Ok::<_, AppError>(Some((Bytes::from(error_rows_csv(&rows)), next)))
        }
    })
    .map_err(|err| {
        err.log_if_internal();
        std::io::Error::other("the errors file failed")
    });
    let body = Body::from_stream(stream::once(future::ready(Ok(header))).chain(pages));
    Ok(csv_response(&format!("import_{id}_errors.csv"), body))
}

fn error_rows_csv(rows: &[FailedRow]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        let messages: Vec<String> = row
            .problems
            .iter()
            .map(|p| match &p.column {
                Some(column) => format!("{column}: {}", p.error),
                None => p.error.clone(),
            })
            .collect();
        let record = [row.line.to_string(), messages.join("; ")]
            .into_iter()
            .chain(row.cells.iter().cloned());
        let _ = writer.write_record(record.map(|c| neutralise(&c).into_owned()));
    }
    writer.into_inner().unwrap_or_default()
}
