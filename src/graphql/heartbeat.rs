//! `heartbeat`: a liveness feed for WebSocket clients. Each beat re-checks the session, so a
//! dashboard learns at once (UNAUTHENTICATED, then the stream ends) when its user is
//! deactivated or logged out elsewhere, or when the connection's access token expires.

use std::time::Duration;

use async_graphql::{Context, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::context::{app, viewer};
use super::errors::to_graphql_error;
use super::users::User;
use crate::error::AppError;

pub const MIN_INTERVAL_SECS: i32 = 1;
pub const MAX_INTERVAL_SECS: i32 = 300;

/// One beat of the `heartbeat` subscription.
#[derive(SimpleObject)]
pub struct Heartbeat {
    /// Server time of the beat.
    pub at: DateTime<Utc>,
    /// 1 for the first beat, then counting up.
    pub sequence: i32,
    /// The subscribed user as stored now.
    pub user: User,
}

#[derive(Default)]
pub struct HeartbeatSubscription;

#[Subscription]
impl HeartbeatSubscription {
    /// Beats at once and then every `intervalSeconds` (1-300, default 15) while the session is
    /// valid; ends with UNAUTHENTICATED when it is not. While the database is unreachable,
    /// beats are skipped (the subscription goes on and beats again once it is back).
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 15, desc = "Seconds between beats (1-300).")] interval_seconds: i32,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Heartbeat>>> {
        let viewer = viewer(ctx)?.clone();
        if !(MIN_INTERVAL_SECS..=MAX_INTERVAL_SECS).contains(&interval_seconds) {
            return Err(to_graphql_error(AppError::bad_input(
                "intervalSeconds",
                format!(
                    "intervalSeconds must be between {MIN_INTERVAL_SECS} and {MAX_INTERVAL_SECS}"
                ),
            )));
        }
        let app = app(ctx).clone();
        let period = Duration::from_secs(interval_seconds as u64);
        Ok(async_stream_beats(app, viewer, period))
    }
}

fn async_stream_beats(
    app: std::sync::Arc<crate::app::App>,
    viewer: crate::auth::Viewer,
    period: Duration,
) -> impl Stream<Item = async_graphql::Result<Heartbeat>> {
    let ticker = tokio::time::interval(period);
    futures_util::stream::unfold(
        (ticker, 0i32, false),
        move |(mut ticker, sequence, ended)| {
            let app = app.clone();
            let viewer = viewer.clone();
            async move {
                if ended {
                    return None;
                }
                loop {
                    ticker.tick().await;
                    match app.auth.recheck(&viewer).await {
                        Ok(user) => {
                            let beat = Heartbeat {
                                at: Utc::now(),
                                sequence: sequence + 1,
                                user: User(user),
                            };
                            return Some((Ok(beat), (ticker, sequence + 1, false)));
                        }
                        // The database is unreachable for a moment: the session cannot be
                        // re-checked, but nothing says it ended. Skip this beat and try at the
                        // next one, so a blip does not end the subscription.
                        Err(err @ (AppError::Unavailable(_) | AppError::Timeout(_))) => {
                            err.log_if_internal();
                            continue;
                        }
                        Err(err) => {
                            return Some((Err(to_graphql_error(err)), (ticker, sequence, true)))
                        }
                    }
                }
            }
        },
    )
}
