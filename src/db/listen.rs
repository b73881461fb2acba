//! LISTEN/NOTIFY on a dedicated connection outside the pool: wake-ups for the loops that poll
//! PostgreSQL (job workers, the event dispatcher), and the live fan-out's feed.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

/// What a listening connection delivers: notifications and other server messages; the
/// stream ends (or errs) when the connection is lost.
pub type Messages = Pin<Box<dyn Stream<Item = Result<AsyncMessage, tokio_postgres::Error>> + Send>>;

/// Connects and LISTENs on `channel`. The client must be kept alive as long as the
/// messages are read.
pub async fn listening(
    url: &str,
    channel: &str,
) -> Result<(tokio_postgres::Client, Messages), String> {
    use futures_util::StreamExt;
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages: Messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
        connection.poll_message(cx)
    }));
    let statement = format!("LISTEN {channel}");
    {
        let listening = client.batch_execute(&statement);
        // The connection must be polled for the LISTEN to complete.
        let mut listening = std::pin::pin!(listening);
        loop {
            tokio::select! {
                result = &mut listening => {
                    result.map_err(|e| e.to_string())?;
                    break;
                }
                message = messages.next() => if message.is_none() {
                    return Err("the connection closed".into());
                },
            }
        }
    }
    Ok((client, messages))
}

/// LISTENs on `channel` and wakes `wake` on each notification; reconnects after errors.
/// Callers poll as well, so a notification lost while reconnecting only costs one poll.
pub async fn wake_on(
    url: String,
    channel: &'static str,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    use futures_util::StreamExt;
    let mut retry = Duration::from_millis(500);
    while !shutdown.is_cancelled() {
        match listening(&url, channel).await {
            Ok((_client, mut messages)) => {
                retry = Duration::from_millis(500);
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        message = messages.next() => match message {
                            Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        },
                    }
                }
            }
            Err(err) => tracing::debug!(error = %err, "listener could not connect"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(Duration::from_secs(10));
    }
}
