//! Subscriptions over a real WebSocket, in both protocols, with auth from connection_init.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::harness::*;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn connect(app: &TestApp, protocol: &str) -> Socket {
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

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message (skipping pings), or None when the connection closes.
async fn next(socket: &mut Socket) -> Option<Value> {
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
    loop {
        let message = next(&mut socket)
            .await
            .expect("an error before the connection ends");
        if message["type"] == "next" && message["payload"]["errors"].is_array() {
            assert_eq!(
                message["payload"]["errors"][0]["extensions"]["code"],
                "UNAUTHENTICATED"
            );
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
    }
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
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
    loop {
        let message = next(&mut socket)
            .await
            .expect("an error before the connection ends");
        assert_eq!(message["type"], "next", "{message}");
        if let Some(errors) = message["payload"]["errors"].as_array() {
            assert_eq!(errors[0]["extensions"]["code"], "UNAUTHENTICATED");
            assert!(errors[0]["message"].as_str().unwrap().contains("expired"));
            break;
        }
    }
    assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
}
