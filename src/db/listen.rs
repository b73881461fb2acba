//! LISTEN/NOTIFY wake-ups for the loops that poll PostgreSQL (job workers, the event
//! dispatcher): a dedicated connection per loop, outside the pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async { client.batch_execute(&format!("LISTEN {channel}")).await };
                // The connection must be polled for the LISTEN to complete.
                let mut listening = std::pin::pin!(listening);
                let ok = loop {
                    tokio::select! {
                        result = &mut listening => break result.is_ok(),
                        message = messages.next() => if message.is_none() { break false },
                    }
                };
                if ok {
                    retry = Duration::from_millis(500);
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            message = messages.next() => match message {
                                Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => wake.notify_one(),
                                Some(Ok(_)) => {}
                                Some(Err(_)) | None => break,
                            },
                        }
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
