//! Live subscriptions over real WebSockets: `notificationReceived` reaches only its user,
//! `recordChanged` only records the subscriber may see (large and bulk events included), a
//! slow subscriber is dropped with 1008 while the others get everything, and ended sessions,
//! role changes and expired tokens close the socket with their codes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{error_code, error_field, TestApp};
use crate::subscriptions::Socket;
use crate::workflows::workers;

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

const RECORDS: &str =
    "subscription { recordChanged { id entity recordId action changes actor { email } } }";
const NOTIFICATIONS: &str =
    "subscription { notificationReceived { id kind title recordType recordId read } }";

/// What came in on a socket.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    /// The connection closed, with the server's close code if it sent one.
    Closed(Option<u16>),
}

/// Opens a WebSocket to `url` in `protocol`, sends the token in connection_init and waits
/// for the ack.
pub async fn open(url: &str, protocol: &str, token: &str) -> Socket {
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connect");
    init(&mut socket, token).await;
    socket
}

async fn init(socket: &mut Socket, token: &str) {
    let hello = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .unwrap();
    match read(socket, Duration::from_secs(10)).await {
        Some(Incoming::Json(ack)) => assert_eq!(ack["type"], "connection_ack", "{ack}"),
        other => panic!("no ack: {other:?}"),
    }
}

/// Starts subscription `id` with `query`.
pub async fn subscribe(socket: &mut Socket, protocol: &str, id: &str, query: &str) {
    let start = if protocol == LEGACY_WS {
        "start"
    } else {
        "subscribe"
    };
    let message = json!({ "id": id, "type": start, "payload": { "query": query } });
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next message (keep-alives skipped), or None when nothing came within `wait`.
pub async fn read(socket: &mut Socket, wait: Duration) -> Option<Incoming> {
    loop {
        let message = tokio::time::timeout(wait, socket.next()).await.ok()?;
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if matches!(value["type"].as_str(), Some("ping" | "pong" | "ka")) {
                    continue;
                }
                return Some(Incoming::Json(value));
            }
            Some(Ok(Message::Close(frame))) => {
                return Some(Incoming::Closed(frame.map(|f| u16::from(f.code))))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Some(Incoming::Closed(None)),
        }
    }
}

/// The next event's `data` (either protocol); panics on anything else.
pub async fn event(socket: &mut Socket) -> Value {
    match read(socket, Duration::from_secs(15)).await {
        Some(Incoming::Json(message))
            if matches!(message["type"].as_str(), Some("next" | "data")) =>
        {
            assert!(message["payload"]["errors"].is_null(), "{message}");
            message["payload"]["data"].clone()
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Reads until the connection closes; its close code.
pub async fn close_code(socket: &mut Socket) -> Option<u16> {
    loop {
        match read(socket, Duration::from_secs(20)).await {
            Some(Incoming::Closed(code)) => return code,
            Some(Incoming::Json(_)) => continue,
            None => panic!("the connection did not close"),
        }
    }
}

/// Waits until this server process holds `n` live subscriptions (a subscription starts
/// asynchronously after the client's subscribe message).
async fn subscribed(app: &TestApp, n: usize) {
    for _ in 0..200 {
        if app.app.live.counts().0 >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{n} subscriptions did not start: {:?}",
        app.app.live.counts()
    );
}

async fn assert_quiet(socket: &mut Socket, wait: Duration) {
    if let Some(incoming) = read(socket, wait).await {
        panic!("expected nothing, got {incoming:?}");
    }
}

#[tokio::test]
async fn notifications_reach_only_their_user_in_both_protocols() {
    let app = TestApp::spawn().await;
    let _workers = workers(&app);
    let admin = app.admin_token().await;
    let (ann_id, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let (bob_id, bob) = app.user_with_role("bob@example.com", "MEMBER").await;
    let mut ann_socket = open(&app.ws_url(), TRANSPORT_WS, &ann).await;
    subscribe(&mut ann_socket, TRANSPORT_WS, "n", NOTIFICATIONS).await;
    let mut bob_socket = open(&app.ws_url(), LEGACY_WS, &bob).await;
    subscribe(&mut bob_socket, LEGACY_WS, "n", NOTIFICATIONS).await;
    subscribed(&app, 2).await;

    let lead = app
        .create_lead(
            &admin,
            json!({ "firstName": "Ada", "assignedToId": ann_id }),
        )
        .await;
    let got = event(&mut ann_socket).await["notificationReceived"].clone();
    assert_eq!(got["kind"], "ASSIGNMENT", "{got}");
    assert_eq!(got["recordType"], "LEAD");
    assert_eq!(got["recordId"], lead.as_str());
    assert_eq!(got["read"], false);
    assert_quiet(&mut bob_socket, Duration::from_millis(1500)).await;

    let lead = app
        .create_lead(&admin, json!({ "firstName": "Bo", "assignedToId": bob_id }))
        .await;
    let got = event(&mut bob_socket).await["notificationReceived"].clone();
    assert_eq!(got["recordId"], lead.as_str(), "{got}");
    assert_quiet(&mut ann_socket, Duration::from_millis(500)).await;
}

#[tokio::test]
async fn record_changes_reach_only_those_who_may_see_the_record() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (ann_id, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let mut admin_socket = open(&app.ws_url(), TRANSPORT_WS, &admin).await;
    subscribe(&mut admin_socket, TRANSPORT_WS, "all", RECORDS).await;
    let mut ann_socket = open(&app.ws_url(), TRANSPORT_WS, &ann).await;
    let leads_only =
        "subscription { recordChanged(entity: LEAD) { entity recordId action changes } }";
    subscribe(&mut ann_socket, TRANSPORT_WS, "leads", leads_only).await;
    subscribed(&app, 2).await;

    // Over PostgreSQL's 8000-byte NOTIFY limit: announced by ID and fetched.
    let notes = "n".repeat(9000);
    let hidden = app
        .create_lead(&admin, json!({ "firstName": "Hidden", "notes": notes }))
        .await;
    let mine = app
        .create_lead(
            &admin,
            json!({ "firstName": "Mine", "assignedToId": ann_id }),
        )
        .await;
    let first = event(&mut admin_socket).await["recordChanged"].clone();
    assert_eq!(first["recordId"], hidden.as_str());
    assert_eq!(first["entity"], "LEAD");
    assert_eq!(first["action"], "created");
    assert_eq!(first["actor"]["email"], "admin@example.com");
    assert_eq!(first["changes"]["notes"]["new"], notes.as_str());
    let second = event(&mut admin_socket).await["recordChanged"].clone();
    assert_eq!(second["recordId"], mine.as_str());
    // Ann sees her lead only.
    let got = event(&mut ann_socket).await["recordChanged"].clone();
    assert_eq!(got["recordId"], mine.as_str(), "{got}");
    assert_eq!(got["changes"]["first_name"]["new"], "Mine");

    // A bulk change is announced in ID chunks; every event arrives, in order.
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            app.create_lead(&admin, json!({ "firstName": format!("Bulk {i}") }))
                .await,
        );
    }
    for id in &ids {
        let got = event(&mut admin_socket).await["recordChanged"].clone();
        assert_eq!(got["recordId"], id.as_str());
    }
    let bulk = app
        .gql(
            Some(&admin),
            "mutation($ids: [ID!]) { bulkUpdateLeads(ids: $ids, patch: {status: CONTACTED}) { count } }",
            json!({ "ids": ids }),
        )
        .await;
    assert_eq!(bulk["data"]["bulkUpdateLeads"]["count"], 20, "{bulk}");
    let mut updated = Vec::new();
    for _ in 0..20 {
        let got = event(&mut admin_socket).await["recordChanged"].clone();
        assert_eq!(got["action"], "updated");
        assert_eq!(got["changes"]["status"]["new"], "contacted");
        updated.push(got["recordId"].as_str().unwrap().to_string());
    }
    updated.sort();
    ids.sort();
    assert_eq!(updated, ids);
    assert_quiet(&mut ann_socket, Duration::from_millis(500)).await;

    // One record: refused when hidden, followed when visible.
    let one = |id: &str| {
        format!("subscription {{ recordChanged(entity: LEAD, id: \"{id}\") {{ action changes }} }}")
    };
    subscribe(&mut ann_socket, TRANSPORT_WS, "hidden", &one(&hidden)).await;
    let refused = read(&mut ann_socket, Duration::from_secs(10)).await;
    let Some(Incoming::Json(refused)) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(refused["id"], "hidden");
    assert_eq!(error_code(&refused["payload"]), "NOT_FOUND", "{refused}");
    subscribe(
        &mut ann_socket,
        TRANSPORT_WS,
        "bad",
        "subscription { recordChanged(id: \"1\") { action } }",
    )
    .await;
    let bad = loop {
        match read(&mut ann_socket, Duration::from_secs(10)).await {
            Some(Incoming::Json(m)) if m["id"] == "bad" && m["type"] != "complete" => break m,
            Some(Incoming::Json(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(error_code(&bad["payload"]), "BAD_USER_INPUT", "{bad}");
    assert_eq!(error_field(&bad["payload"]), "entity");
}

#[tokio::test]
async fn a_slow_subscriber_is_dropped_and_the_others_get_everything() {
    let app = TestApp::spawn_with(|c| c.live.subscriber_buffer = 8).await;
    let admin = app.admin_token().await;
    let mut fast = open(&app.ws_url(), TRANSPORT_WS, &admin).await;
    subscribe(&mut fast, TRANSPORT_WS, "all", RECORDS).await;
    // A client with a tiny receive window that never reads.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(app.addr).await.unwrap();
    let mut request = app.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", TRANSPORT_WS.parse().unwrap());
    let plain = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut slow, _) = tokio_tungstenite::client_async(request, plain)
        .await
        .unwrap();
    init(&mut slow, &admin).await;
    subscribe(&mut slow, TRANSPORT_WS, "all", RECORDS).await;
    subscribed(&app, 2).await;

    let mut ids = Vec::new();
    for i in 0..100 {
        ids.push(
            app.create_lead(&admin, json!({ "firstName": format!("Lead {i}") }))
                .await,
        );
        event(&mut fast).await;
    }
    // Each update event carries the old and new notes: ~12 KB, ~10 MB in all, far more
    // than the kernel buffers between the server and the client that does not read.
    let rounds = 8;
    for round in 0..rounds {
        let notes = format!("{round}").repeat(6000);
        let bulk = app
            .gql(
                Some(&admin),
                "mutation($ids: [ID!], $n: String) { bulkUpdateLeads(ids: $ids, patch: {notes: $n}) { count } }",
                json!({ "ids": ids, "n": notes }),
            )
            .await;
        assert_eq!(bulk["data"]["bulkUpdateLeads"]["count"], 100, "{bulk}");
        // The fast subscriber keeps up with everything.
        for _ in 0..100 {
            event(&mut fast).await;
        }
    }
    // The slow one was dropped: once it reads, it finds the close code after what it had.
    assert_eq!(close_code(&mut slow).await, Some(1008));
    assert_eq!(app.app.live.counts().0, 1);
}

#[tokio::test]
async fn ended_sessions_and_role_changes_close_the_socket() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, ann) = app.user_with_role("ann@example.com", "MEMBER").await;
    let (bob_id, bob) = app.user_with_role("bob@example.com", "MEMBER").await;
    let mut ann_socket = open(&app.ws_url(), TRANSPORT_WS, &ann).await;
    subscribe(&mut ann_socket, TRANSPORT_WS, "r", RECORDS).await;
    let mut bob_socket = open(&app.ws_url(), LEGACY_WS, &bob).await;
    subscribe(&mut bob_socket, LEGACY_WS, "n", NOTIFICATIONS).await;
    subscribed(&app, 2).await;

    let out = app
        .gql(
            Some(&ann),
            "mutation { logout { revokedSessions } }",
            json!({}),
        )
        .await;
    assert_eq!(out["data"]["logout"]["revokedSessions"], 1, "{out}");
    assert_eq!(close_code(&mut ann_socket).await, Some(4401));

    let promoted = app
        .gql(
            Some(&admin),
            "mutation($id: ID!) { updateUser(input: {id: $id, role: MANAGER}) { user { role } } }",
            json!({ "id": bob_id }),
        )
        .await;
    assert!(promoted["errors"].is_null(), "{promoted}");
    assert_eq!(close_code(&mut bob_socket).await, Some(4403));
    assert_eq!(app.app.live.counts(), (0, 0));
}

#[tokio::test]
async fn an_expired_access_token_closes_the_socket() {
    let app = TestApp::spawn_with(|c| c.auth.access_token_ttl = Duration::from_secs(3)).await;
    let admin = app.admin_token().await;
    let mut socket = open(&app.ws_url(), TRANSPORT_WS, &admin).await;
    subscribe(&mut socket, TRANSPORT_WS, "r", RECORDS).await;
    assert_eq!(close_code(&mut socket).await, Some(4401));
}
