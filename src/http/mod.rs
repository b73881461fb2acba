//! The HTTP surface: GraphQL over HTTP and WebSocket, GraphiQL, health checks and the REST shim.

pub mod body;
pub mod client;
pub mod cors;
pub mod csv;
pub mod csv_import;
pub mod errors;
pub mod graphql;
pub mod health;
pub mod openapi;
pub mod playground;
pub mod rest_auth;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::app::App;
use crate::graphql::documents::DocumentCache;
use crate::graphql::input_errors::InputTypes;
use crate::graphql::screen::FieldTypes;
use crate::graphql::{build_schema, AppSchema, Transport};

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    /// Executes `POST`/`GET /graphql` (limits applied by the handler, see `graphql::limits`).
    pub schema: AppSchema,
    /// Executes operations over `/graphql/ws` (limits applied by a schema extension).
    pub ws_schema: AppSchema,
    /// Parsed documents of `/graphql` requests, by their text.
    pub documents: Arc<DocumentCache>,
    /// Every argument's declared type, to name the field of input errors.
    pub input_types: Arc<InputTypes>,
    /// Every field's type, to count the fields of a document that read lists.
    pub field_types: Arc<FieldTypes>,
    /// Cancelled when the server shuts down; long-lived WebSocket connections end on it.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(app: Arc<App>, shutdown: CancellationToken) -> Self {
        let schema = build_schema(&app.config.graphql, Transport::Http);
        let sdl = schema.sdl();
        let input_types = Arc::new(InputTypes::of_sdl(&sdl));
        let field_types = Arc::new(FieldTypes::of_sdl(&sdl));
        let ws_schema = build_schema(
            &app.config.graphql,
            Transport::WebSocket(input_types.clone(), field_types.clone()),
        );
        // Requests trust recently checked sessions only while the live feed listens.
        app.live.start();
        AppState {
            app,
            schema,
            ws_schema,
            documents: Arc::new(DocumentCache::default()),
            input_types,
            field_types,
            shutdown,
        }
    }
}

/// The routes and middleware. Fails only on invalid configuration (a bad CORS origin).
pub fn router(state: AppState) -> anyhow::Result<Router> {
    let body_limit = state.app.config.http.body_limit_bytes;
    let cors = cors::layer(&state.app.config.http.cors_origins)?;
    let router = Router::new()
        .route(
            "/graphql",
            get(graphql::get_graphql).post(graphql::post_graphql),
        )
        .route("/graphql/ws", get(ws::subscriptions))
        .route("/playground/vendor/{file}", get(playground::vendor_file))
        .route("/playground/live", get(playground::live_page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/auth/login/", post(rest_auth::login))
        .route("/api/auth/refresh/", post(rest_auth::refresh))
        .route("/api/openapi.json", get(openapi::document))
        .route(
            "/api/v1/import/{resource}/",
            get(csv::template)
                .post(csv_import::import)
                // The upload handler counts bytes itself and answers 413 at its own limit.
                .layer(DefaultBodyLimit::disable())
                .layer(axum::middleware::map_request(pace_upload)),
        )
        .route(
            "/api/v1/import/{id}/errors.csv",
            get(csv_import::errors_csv),
        )
        .route("/api/v1/export/{resource}/", get(csv::export))
        // Handlers read bodies themselves with this limit (http::body); this covers the rest.
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::map_response(no_sniffing))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .make_span_with(|request: &Request<_>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings may carry GraphQL variables.
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id = %request_id,
                    )
                }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state);
    Ok(match cors {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

/// Serves `router` until `shutdown` is cancelled, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    Ok(())
}

/// Every answer says its content type is to be believed (JSON, CSV and assets alike), so no
/// browser renders one as HTML.
async fn no_sniffing(mut response: axum::response::Response) -> axum::response::Response {
    response
        .headers_mut()
        .entry(axum::http::header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(axum::http::HeaderValue::from_static("nosniff"));
    response
}

/// Uploads are read a little at a time (see `body::paced`).
async fn pace_upload(request: axum::extract::Request) -> axum::extract::Request {
    request.map(body::paced)
}
