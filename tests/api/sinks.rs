//! Real receivers for what MyCRM sends out: an SMTP server that accepts lettre's mail over a
//! TCP socket, and an HTTP server that records webhook calls (and can be told to fail).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA section (headers and body).
    pub data: String,
}

/// A minimal SMTP server (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) on 127.0.0.1.
pub struct SmtpSink {
    pub port: u16,
    pub mail: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let store = mail.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(socket, store).await;
                });
            }
        });
        SmtpSink { port, mail }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mail.lock().unwrap().clone()
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<Mail>>>,
) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut current = Mail {
        from: String::new(),
        to: Vec::new(),
        data: String::new(),
    };
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current.from = line[10..].trim().to_string();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            current
                .to
                .push(line[8..].trim().trim_matches(['<', '>']).to_string());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(line) = lines.next_line().await? {
                if line == "." {
                    break;
                }
                data.push_str(
                    line.strip_prefix('.')
                        .filter(|_| line.starts_with(".."))
                        .unwrap_or(&line),
                );
                data.push('\n');
            }
            current.data = data;
            store.lock().unwrap().push(current.clone());
            current.to.clear();
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 OK\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// One webhook call as received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// An HTTP server recording every request; it answers `status` (200 unless told otherwise).
pub struct WebhookSink {
    pub port: u16,
    pub calls: Arc<Mutex<Vec<Call>>>,
    status: Arc<AtomicUsize>,
}

impl WebhookSink {
    pub async fn start() -> WebhookSink {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicUsize::new(200));
        let (store, answer) = (calls.clone(), status.clone());
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method, headers: HeaderMap, body: String| {
                let (store, answer) = (store.clone(), answer.clone());
                async move {
                    store.lock().unwrap().push(Call {
                        method: method.to_string(),
                        headers,
                        body,
                    });
                    let code = answer.load(Ordering::SeqCst) as u16;
                    (StatusCode::from_u16(code).unwrap(), "ok")
                }
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        WebhookSink {
            port,
            calls,
            status,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status as usize, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}
