//! REST login and refresh, compatible with the original MyCRM docs:
//! `POST /api/auth/login/` `{"username" | "email", "password"}` → `{"access", "refresh", "user"}`;
//! `POST /api/auth/refresh/` `{"refresh"}` → `{"access", "refresh"}`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::body::read_json;
use super::client::client_info;
use super::errors::rest_body_error;
use super::AppState;
use crate::auth::User;
use crate::error::AppError;
use crate::validation;

#[derive(Deserialize)]
pub struct LoginBody {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
pub struct RefreshBody {
    refresh: Option<String>,
}

fn user_json(user: &User) -> serde_json::Value {
    json!({
        "id": user.id.0.to_string(),
        "email": user.email,
        "name": user.name,
        "role": user.role.as_str(),
        "workspace_id": user.workspace_id.0.to_string(),
    })
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.app.config.http.body_limit_bytes;
    let body: LoginBody = match read_json(body, limit, "an object {\"email\", \"password\"}").await
    {
        Ok(body) => body,
        Err(err) => return rest_body_error(err),
    };
    let Some(email) = body
        .email
        .or(body.username)
        .filter(|e| !e.trim().is_empty())
    else {
        return AppError::bad_input("email", "email (or username) is required").into_response();
    };
    let Some(password) = body.password else {
        return AppError::bad_input("password", "password is required").into_response();
    };
    for (field, text) in [("email", &email), ("password", &password)] {
        if let Err(err) = validation::reject_nul(field, text) {
            return err.into_response();
        }
    }
    let client = client_info(&headers, peer, state.app.config.http.trust_forwarded_for);
    match state.app.auth.login(&email, password, &client.ip).await {
        Ok(session) => Json(json!({
            "access": session.access_token,
            "refresh": session.refresh_token,
            "user": user_json(&session.user),
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}

pub async fn refresh(State(state): State<AppState>, body: Body) -> Response {
    let limit = state.app.config.http.body_limit_bytes;
    let body: RefreshBody = match read_json(body, limit, "an object {\"refresh\"}").await {
        Ok(body) => body,
        Err(err) => return rest_body_error(err),
    };
    let Some(token) = body.refresh.filter(|t| !t.trim().is_empty()) else {
        return AppError::bad_input("refresh", "refresh is required").into_response();
    };
    if let Err(err) = validation::reject_nul("refresh", &token) {
        return err.into_response();
    }
    match state.app.auth.refresh(&token).await {
        Ok(session) => Json(json!({
            "access": session.access_token,
            "refresh": session.refresh_token,
        }))
        .into_response(),
        Err(err) => err.into_response(),
    }
}
