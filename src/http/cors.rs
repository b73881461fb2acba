//! Cross-origin access for browser frontends on other sites. Tokens travel in the
//! `Authorization` header (never cookies), so no credentials mode is needed.

use std::time::Duration;

use anyhow::Context;
use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

/// `None` when no origin is configured (same-origin only).
pub fn layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin: AllowOrigin = if origins.iter().any(|o| o == "*") {
        Any.into()
    } else {
        origins
            .iter()
            .map(|o| {
                HeaderValue::from_str(o.trim_end_matches('/'))
                    .with_context(|| format!("MYCRM_CORS_ORIGINS: {o:?} is not a valid origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
            .into()
    };
    let request_id = HeaderName::from_static("x-request-id");
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                request_id.clone(),
            ])
            .expose_headers([request_id])
            .max_age(Duration::from_secs(600)),
    ))
}
