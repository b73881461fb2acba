//! The HTTP transport: bodies, limits, GET, GraphiQL, health, request ids and error codes.

use serde_json::{json, Value};

use crate::harness::*;

async fn post_raw(app: &TestApp, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn malformed_and_oversize_bodies_get_coded_errors() {
    let app = TestApp::spawn_with(|c| c.http.body_limit_bytes = 4096).await;
    let (status, body) = post_raw(&app, "{\"query\": ").await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_REQUEST");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("malformed JSON"));

    let (status, body) = post_raw(&app, "[1, 2]").await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_REQUEST");

    let huge =
        json!({ "query": format!("{{ me {{ id }} }} # {}", "x".repeat(10_000)) }).to_string();
    let (status, body) = post_raw(&app, huge.clone()).await;
    assert_eq!(status, 413);
    assert_eq!(error_code(&body), "PAYLOAD_TOO_LARGE");

    // The REST routes have the same limit.
    let response = app
        .client
        .post(app.url("/api/auth/login/"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn parse_validation_and_argument_errors_have_codes() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let parse = app.gql(Some(&token), "{ me { id ", json!({})).await;
    assert_eq!(error_code(&parse), "GRAPHQL_PARSE_FAILED");
    let unknown = app
        .gql(Some(&token), "{ me { shoeSize } }", json!({}))
        .await;
    assert_eq!(error_code(&unknown), "GRAPHQL_VALIDATION_FAILED");
    let bad_variable = app
        .gql(
            Some(&token),
            "query($n: Int) { users(first: $n) { totalCount } }",
            json!({ "n": "ten" }),
        )
        .await;
    assert!(
        bad_variable["errors"][0]["extensions"]["code"].is_string(),
        "{bad_variable}"
    );
}

#[tokio::test]
async fn depth_and_complexity_limits() {
    let app = TestApp::spawn_with(|c| {
        c.graphql.max_depth = 3;
        c.graphql.max_complexity = 12;
    })
    .await;
    let token = app.admin_token().await;
    let ok = app
        .gql(Some(&token), "{ me { workspace { name } } }", json!({}))
        .await;
    assert!(ok["errors"].is_null(), "{ok}");

    let deep = app
        .gql(
            Some(&token),
            "{ users { nodes { workspace { name } } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&deep), "QUERY_TOO_DEEP");
    assert!(deep["data"].is_null());
    // Fragments count too.
    let via_fragment = app
        .gql(
            Some(&token),
            "{ users { ...U } } fragment U on UserConnection { nodes { workspace { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&via_fragment), "QUERY_TOO_DEEP");

    let complex = app
        .gql(Some(&token), "{ a: me { id email name role isActive createdAt } b: me { id email name role isActive createdAt } }", json!({}))
        .await;
    assert_eq!(error_code(&complex), "QUERY_TOO_COMPLEX");
    assert!(
        complex["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("limit of 12"),
        "{complex}"
    );
    assert!(complex["data"].is_null());

    // In a batch each operation is checked on its own: one refused, the next answered.
    let batch: Value = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .json(&json!([
            { "query": "{ users { nodes { workspace { name } } } }" },
            { "query": "{ me { email } }" },
            { "query": "query A { me { id } } query B { me { id } }", "operationName": "C" },
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        batch[0]["errors"][0]["extensions"]["code"],
        "QUERY_TOO_DEEP"
    );
    assert_eq!(batch[1]["data"]["me"]["email"], ADMIN_EMAIL, "{batch}");
    assert_eq!(
        batch[2]["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{batch}"
    );
}

#[tokio::test]
async fn introspection_is_not_counted_for_depth() {
    let app = TestApp::spawn_with(|c| c.graphql.max_depth = 3).await;
    let introspection = app
        .gql(
            None,
            "{ __schema { queryType { fields { type { ofType { ofType { name } } } } } } }",
            json!({}),
        )
        .await;
    assert!(introspection["errors"].is_null(), "{introspection}");
}

#[tokio::test]
async fn get_runs_queries_but_not_mutations() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let response = app
        .client
        .get(app.url("/graphql"))
        .query(&[("query", "{ me { email } }")])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["email"], ADMIN_EMAIL);

    let mutation = app
        .client
        .get(app.url("/graphql"))
        .query(&[(
            "query",
            "mutation { logout(allSessions: true) { revokedSessions } }",
        )])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(mutation.status(), 405);
    let body: Value = mutation.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_REQUEST");
    // Nothing happened: the session is alive.
    assert!(app.gql(Some(&token), "{ me { id } }", json!({})).await["errors"].is_null());
}

#[tokio::test]
async fn batches_are_bounded() {
    let app = TestApp::spawn().await;
    let one = json!({ "query": "{ __typename }" });
    let (status, body) = post_raw(&app, json!([one, one]).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(body[1]["data"]["__typename"], "QueryRoot");
    let (status, body) = post_raw(&app, Value::Array(vec![one; 11]).to_string()).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), "BAD_REQUEST");
}

#[tokio::test]
async fn graphiql_and_its_assets_are_served() {
    let app = TestApp::spawn().await;
    let page = app
        .client
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("MyCRM GraphiQL"));
    assert!(html.contains("/playground/vendor/graphiql.min.js"));
    let script = app
        .client
        .get(app.url("/playground/vendor/graphiql.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let missing = app
        .client
        .get(app.url("/playground/vendor/..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().get("x-request-id").is_some());
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["migrations"], true);

    // A caller's request id is kept.
    let tagged = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn readiness_fails_without_a_database() {
    let mut config = test_config();
    config.database.pool_size = 1;
    // A socket directory where no server listens.
    let url = mycrm::db::embedded::socket_url(
        std::path::Path::new("/nonexistent-mycrm"),
        "mycrm",
        "none",
    );
    let app = mycrm::server::build_app(&config, &url).unwrap();
    let app = TestApp::serve(app, url).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], false);
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An unreachable database is SERVICE_UNAVAILABLE (retry later), without its cause.
    let answer = app.try_login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(error_code(&answer), "SERVICE_UNAVAILABLE");
    assert_eq!(
        answer["errors"][0]["message"],
        "the service is temporarily unavailable; try again shortly"
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let app =
        TestApp::spawn_with(|c| c.http.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed_headers.contains("authorization"));
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());

    // Without configuration there is no cross-origin access at all.
    let plain = TestApp::spawn().await;
    let response = plain
        .client
        .post(plain.url("/graphql"))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
