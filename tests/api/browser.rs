//! The live page in a real browser: headless Chromium (Debian's `chromium`), driven over the
//! DevTools protocol, loads `/playground/live`, logs in, and shows a change made through the
//! API in its live feed and a notification on its bell.
//!
//! CI installs Chromium (`.ci/run`). Where no Chromium is found the test says so and passes,
//! so the test command still works on a machine with only Rust and PostgreSQL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{TestApp, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::subscriptions::Socket;
use crate::workflows::workers;

fn chromium() -> Option<String> {
    if let Ok(path) = std::env::var("CHROME") {
        return Some(path);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|name| {
            Command::new(name)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|name| name.to_string())
}

/// A headless browser, killed on drop.
struct Browser {
    child: Child,
    port: u16,
    profile: std::path::PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Browser {
    fn start(binary: &str) -> Browser {
        let profile = std::env::temp_dir().join(format!("mycrm-chromium-{}", std::process::id()));
        let mut child = Command::new(binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting Chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                    let port: u16 = rest.split('/').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("Chromium's DevTools port");
        Browser {
            child,
            port,
            profile,
        }
    }

    /// The DevTools socket of the first page.
    async fn page(&self) -> Page {
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/json/list", self.port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let url = targets
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Page { socket, next: 0 }
    }
}

struct Page {
    socket: Socket,
    next: u64,
}

impl Page {
    /// Sends a DevTools command and waits for its answer.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let message = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("a DevTools answer")
                .unwrap()
                .unwrap();
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["id"] == id {
                    assert!(value["error"].is_null(), "{method}: {value}");
                    return value["result"].clone();
                }
            }
        }
    }

    /// Evaluates `expression` in the page; its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        assert!(result["exceptionDetails"].is_null(), "{result}");
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy in the page.
    async fn wait_for(&mut self, expression: &str, what: &str) -> Value {
        for _ in 0..150 {
            let value = self.eval(expression).await;
            if !value.is_null() && value != json!(false) && value != json!("") {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let page = self.eval("document.body.innerText").await;
        panic!("timed out waiting for {what}; the page shows: {page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_page_logs_in_and_shows_changes_as_they_happen() {
    let Some(binary) = chromium() else {
        eprintln!("SKIPPED: no Chromium found (apt-get install chromium, or set CHROME)");
        return;
    };
    let app = TestApp::spawn().await;
    let _workers = workers(&app);
    let admin = app.admin_token().await;
    let (_, member) = app.user_with_role("mo@example.com", "MEMBER").await;

    let browser = Browser::start(&binary);
    let mut page = browser.page().await;
    page.call(
        "Page.navigate",
        json!({ "url": app.url("/playground/live") }),
    )
    .await;
    page.wait_for(
        "document.readyState === 'complete' && !!document.getElementById('email') \
         && !document.getElementById('login-form').hidden",
        "the login form",
    )
    .await;
    page.eval(&format!(
        "document.getElementById('email').value = {};\
         document.getElementById('password').value = {};\
         document.getElementById('login').click(); true",
        json!(ADMIN_EMAIL),
        json!(ADMIN_PASSWORD)
    ))
    .await;
    page.wait_for(
        "document.getElementById('status').textContent === 'live'",
        "the live status",
    )
    .await;
    assert_eq!(
        page.eval("document.getElementById('who').textContent")
            .await,
        ADMIN_EMAIL
    );
    // The subscriptions start just after the ack: wait until the server holds both.
    for _ in 0..100 {
        if app.app.live.counts().0 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A change made through the API appears in the feed.
    let lead = app
        .create_lead(
            &admin,
            json!({ "firstName": "Browser", "lastName": "Test" }),
        )
        .await;
    let text = page
        .wait_for(
            &format!(
                "(function () {{ var li = document.querySelector('#feed li[data-record-id=\"{lead}\"][data-action=\"created\"]'); \
                 return li ? li.textContent : null; }})()"
            ),
            "the lead in the live feed",
        )
        .await;
    assert!(text.as_str().unwrap().contains("created"), "{text}");

    // Someone else assigns the admin a task: the bell counts it.
    let me = app.gql(Some(&admin), "{ me { id } }", json!({})).await;
    app.create_task(
        &member,
        json!({ "title": "Check the browser test", "assignedToId": me["data"]["me"]["id"] }),
    )
    .await;
    page.wait_for(
        "Number(document.getElementById('bell-count').textContent) >= 1",
        "the bell to count the notification",
    )
    .await;
}
