//! Subscriptions over a real WebSocket, in both protocols, with auth from connection_init.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::*;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connect");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message (skipping pings), or None when the connection closes.
pub async fn next(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")?;
        match message {
            Ok(Message::Text(text)) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" || value["type"] == "ka" {
                    continue;
                }
                return Some(value);
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Sends `query` as operation `id` and returns the operation's first answer (`next` or
/// `error`; an earlier operation's `complete` may come first and is skipped).
pub async fn operation(socket: &mut Socket, id: &str, query: &str) -> Value {
    send(
        socket,
        json!({ "id": id, "type": "subscribe", "payload": { "query": query } }),
    )
    .await;
    loop {
        let message = next(socket).await.expect("an answer, not a closed socket");
        if message["id"] == id && message["type"] != "complete" {
            return message;
        }
    }
}

/// The errors of an operation's answer: a protocol `error`'s payload, or a result's `errors`.
pub fn errors_of(answer: &Value) -> &Value {
    if answer["type"] == "error" {
        &answer["payload"]
    } else {
        &answer["payload"]["errors"]
    }
}

const HEARTBEAT: &str =
    "subscription { heartbeat(intervalSeconds: 1) { sequence at user { email } } }";

#[tokio::test]
async fn graphql_transport_ws_with_token_in_connection_init() {
    let app = TestApp::spawn().await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = token_of(&session);
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let first = next(&mut socket).await.unwrap();
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["payload"]["data"]["heartbeat"]["sequence"], 1);
    assert_eq!(
        first["payload"]["data"]["heartbeat"]["user"]["email"],
        ADMIN_EMAIL
    );
    let second = next(&mut socket).await.unwrap();
    assert_eq!(second["payload"]["data"]["heartbeat"]["sequence"], 2);

    // Logging the session out ends the feed with UNAUTHENTICATED.
    app.gql(
        None,
        "mutation($t: String) { logout(refreshToken: $t) { revokedSessions } }",
        json!({ "t": session["refreshToken"] }),
    )
    .await;
    assert_feed_ends_unauthenticated(&mut socket, "log in again").await;
}

#[tokio::test]
async fn legacy_graphql_ws_protocol() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let mut socket = connect(&app, "graphql-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "7", "type": "start", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let data = next(&mut socket).await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["id"], "7");
    assert_eq!(
        data["payload"]["data"]["heartbeat"]["user"]["email"],
        ADMIN_EMAIL
    );
    send(&mut socket, json!({ "id": "7", "type": "stop" })).await;
}

#[tokio::test]
async fn a_bad_token_is_refused_at_connection_init() {
    let app = TestApp::spawn().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-jwt" } }),
    )
    .await;
    // No ack: the server closes the connection.
    assert!(next(&mut socket).await.is_none());
}

#[tokio::test]
async fn anonymous_connections_get_unauthenticated_subscriptions() {
    let app = TestApp::spawn().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    let answer = next(&mut socket).await.unwrap();
    assert!(
        answer["type"] == "error" || answer["type"] == "next",
        "{answer}"
    );
    let errors = if answer["type"] == "error" {
        &answer["payload"]
    } else {
        &answer["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "UNAUTHENTICATED",
        "{answer}"
    );
}

#[tokio::test]
async fn subscription_arguments_are_validated() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    next(&mut socket).await.unwrap();
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { heartbeat(intervalSeconds: 0) { sequence } }" } })).await;
    let answer = next(&mut socket).await.unwrap();
    let errors = if answer["type"] == "error" {
        &answer["payload"]
    } else {
        &answer["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    assert_eq!(errors[0]["extensions"]["field"], "intervalSeconds");
}

#[tokio::test]
async fn websocket_operations_have_the_same_limits_and_codes() {
    let app = TestApp::spawn_with(|c| {
        // Enough for the login mutation (depth 3, complexity 7).
        c.graphql.max_depth = 3;
        c.graphql.max_complexity = 8;
    })
    .await;
    let token = app.admin_token().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    next(&mut socket).await.unwrap();
    let cases = [
        (
            "subscription { heartbeat(intervalSeconds: 1) { user { workspace { name } } } }",
            "QUERY_TOO_DEEP",
        ),
        (
            "subscription { heartbeat(intervalSeconds: 1) { a: sequence b: sequence c: sequence d: sequence e: sequence f: sequence g: sequence h: sequence } }",
            "QUERY_TOO_COMPLEX",
        ),
        ("subscription { heartbeat(", "GRAPHQL_PARSE_FAILED"),
        ("subscription { heartbeat { shoeSize } }", "GRAPHQL_VALIDATION_FAILED"),
        // Values the schema refuses name their field, as over HTTP.
        (
            "mutation { createTask(input: {title: \"x\", dueAt: \"tomorrow\"}) { task { id } } }",
            "BAD_USER_INPUT dueAt",
        ),
        (
            "mutation { createTask(input: {title: \"x\", priority: SUPER}) { task { id } } }",
            "BAD_USER_INPUT priority",
        ),
    ];
    for (n, (query, expected)) in cases.iter().enumerate() {
        let (code, field) = expected.split_once(' ').unwrap_or((expected, ""));
        let id = n.to_string();
        let answer = operation(&mut socket, &id, query).await;
        let errors = errors_of(&answer);
        assert_eq!(errors[0]["extensions"]["code"], code, "{query}: {answer}");
        if !field.is_empty() {
            assert_eq!(errors[0]["extensions"]["field"], field, "{query}: {answer}");
        }
    }
    assert_eq!(app.count("tasks").await, 0);
}

#[tokio::test]
async fn the_feed_ends_when_the_access_token_expires() {
    let app = TestApp::spawn_with(|c| c.auth.access_token_ttl = Duration::from_secs(2)).await;
    let token = app.admin_token().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }),
    )
    .await;
    assert_feed_ends_unauthenticated(&mut socket, "expired").await;
}

/// Beats until the feed ends: the server closes the socket with 4401 (its session ended or
/// its token expired), or, if a beat's own re-check sees it first, an UNAUTHENTICATED error
/// saying `why` ends the feed.
async fn assert_feed_ends_unauthenticated(socket: &mut Socket, why: &str) {
    use crate::live::{read, Incoming};
    loop {
        match read(socket, Duration::from_secs(10)).await {
            Some(Incoming::Closed(code)) => {
                assert_eq!(code, Some(4401));
                return;
            }
            Some(Incoming::Json(message)) => {
                assert_eq!(message["type"], "next", "{message}");
                if let Some(errors) = message["payload"]["errors"].as_array() {
                    assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED");
                    let text = errors[0]["message"].as_str().unwrap();
                    assert!(text.contains(why), "{text}");
                    return;
                }
            }
            None => panic!("the feed did not end"),
        }
    }
}

/// Reports progress in two steps, each waiting for the test to let it go on.
#[derive(serde::Serialize, serde::Deserialize)]
struct Stepper {}

static GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

impl mycrm::jobs::Job for Stepper {
    const KIND: &'static str = "test.stepper";
    async fn run(self, ctx: mycrm::jobs::JobContext) -> Result<Value, String> {
        for (percent, message) in [(30, "step one"), (80, "step two")] {
            ctx.progress(percent, message)
                .await
                .map_err(|e| e.to_string())?;
            GATE.acquire().await.unwrap().forget();
        }
        Ok(json!({ "steps": 2 }))
    }
}

/// The next `jobUpdated` payload on subscription `id`.
async fn job_update(socket: &mut Socket) -> Value {
    let message = next(socket).await.expect("an update");
    assert_eq!(message["type"], "next", "{message}");
    message["payload"]["data"]["jobUpdated"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_updated_pushes_progress_and_the_final_state() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let (_, member) = app.user_with_role("mia@acme.test", "MEMBER").await;
    #[derive(diesel::QueryableByName)]
    struct Admin {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        workspace_id: i64,
    }
    let mut conn = app.app.db.get().await.unwrap();
    let admin: Admin = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("SELECT id, workspace_id FROM users WHERE email = $1")
            .bind::<diesel::sql_types::Text, _>(ADMIN_EMAIL),
        &mut conn,
    )
    .await
    .unwrap();
    drop(conn);
    let mut job = mycrm::jobs::new_job(&Stepper {});
    job.workspace_id = Some(admin.workspace_id);
    job.created_by = Some(admin.id);
    let queue =
        mycrm::jobs::JobQueue::new(app.app.db.clone(), "test".into(), Duration::from_secs(30));
    let id = queue.enqueue(&job).await.unwrap().unwrap().to_string();
    let subscription = json!({ "query": "subscription($id: ID!) { jobUpdated(id: $id) { id state progress progressMessage result } }", "variables": { "id": id } });

    // A member who did not start the job cannot watch it.
    let mut stranger = connect(&app, "graphql-transport-ws").await;
    send(&mut stranger, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {member}") } })).await;
    assert_eq!(next(&mut stranger).await.unwrap()["type"], "connection_ack");
    send(
        &mut stranger,
        json!({ "id": "1", "type": "subscribe", "payload": subscription }),
    )
    .await;
    let refused = next(&mut stranger).await.unwrap();
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{refused}"
    );
    assert!(refused["payload"]["data"].is_null());
    assert_eq!(next(&mut stranger).await.unwrap()["type"], "complete");

    let mut socket = connect(&app, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "subscribe", "payload": subscription }),
    )
    .await;
    let first = job_update(&mut socket).await;
    assert_eq!(first["state"], "AVAILABLE");
    assert_eq!(first["progress"], 0);

    let mut registry = mycrm::jobs::Registry::default();
    registry.register::<Stepper>();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(mycrm::jobs::worker::run(
        app.app.clone(),
        std::sync::Arc::new(registry),
        mycrm::jobs::worker::WorkerConfig {
            poll: Duration::from_millis(50),
            ..Default::default()
        },
        app.database_url.clone(),
        shutdown.clone(),
    ));
    // Updates arrive as they happen; each step waits for the test, so none is missed.
    for (percent, message) in [(30, "step one"), (80, "step two")] {
        let update = loop {
            let update = job_update(&mut socket).await;
            assert_eq!(update["state"], "RUNNING", "{update}");
            if update["progress"] == percent {
                break update;
            }
        };
        assert_eq!(update["progressMessage"], message);
        GATE.add_permits(1);
    }
    let last = job_update(&mut socket).await;
    assert_eq!(last["state"], "COMPLETED", "{last}");
    assert_eq!(last["result"], json!({ "steps": 2 }));
    // A final state ends the feed.
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    shutdown.cancel();
    worker.await.unwrap();
}
