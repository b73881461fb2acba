//! `/healthz`: the process is up. `/readyz`: the database answers and every migration this
//! binary knows is applied (load balancers send traffic only then).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::db;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = db::ping(&state.app.db).await;
    let migrations = database
        && db::migrations::all_applied(&state.app.db)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %format!("{err:#}"), "readiness: checking migrations");
                false
            });
    let ready = database && migrations;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "database": database,
            "migrations": migrations,
        })),
    )
}
