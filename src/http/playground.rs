//! GraphiQL and the live page, served from `playground/` (compiled into the binary, so they
//! work offline and need no CDN).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub const INDEX_HTML: &str = include_str!("../../playground/index.html");

/// The live page: log in, the notification bell and a live feed of record changes.
const LIVE_HTML: &str = include_str!("../../playground/live.html");

pub async fn live_page() -> axum::response::Html<&'static str> {
    axum::response::Html(LIVE_HTML)
}

/// (file name, content type, bytes)
const VENDOR_FILES: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../playground/vendor/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/vendor/react-dom.production.min.js"),
    ),
    (
        "VERSIONS.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../playground/vendor/VERSIONS.txt"),
    ),
    (
        "LICENSES.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../playground/vendor/LICENSES.txt"),
    ),
];

pub async fn vendor_file(Path(name): Path<String>) -> Response {
    match VENDOR_FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
