//! GraphiQL and the live page, served from `playground/` (compiled into the binary, so they
//! work offline and need no CDN).

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

const INDEX_HTML: &str = include_str!("../../playground/index.html");

/// The live page: log in, the notification bell and a live feed of record changes.
const LIVE_HTML: &str = include_str!("../../playground/live.html");

/// Each page's Content-Security-Policy: scripts only from this server plus the page's own
/// inline script, allowed by its hash (so an injected script cannot run); no framing, no
/// plugins, no other origins to connect to. Styles may be inline: GraphiQL sets style
/// attributes as it renders.
static INDEX_CSP: LazyLock<HeaderValue> = LazyLock::new(|| policy(INDEX_HTML));
static LIVE_CSP: LazyLock<HeaderValue> = LazyLock::new(|| policy(LIVE_HTML));

fn policy(html: &str) -> HeaderValue {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(
                " 'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    let policy = format!(
        "default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// The text of each inline `<script>` (one without `src`), as the browser hashes it.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    html.split("<script").skip(1).filter_map(|rest| {
        let (attributes, body) = rest.split_once('>')?;
        if attributes.contains("src=") {
            return None;
        }
        Some(body.split_once("</script>")?.0)
    })
}

/// An HTML page with its security headers: the policy above, no MIME sniffing, no referrer
/// sent elsewhere, and no framing for browsers that predate `frame-ancestors`.
fn page(html: &'static str, csp: &HeaderValue) -> Response {
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// GraphiQL.
pub fn graphiql() -> Response {
    page(INDEX_HTML, &INDEX_CSP)
}

pub async fn live_page() -> Response {
    page(LIVE_HTML, &LIVE_CSP)
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
