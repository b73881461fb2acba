//! Subscriptions that follow one row (`jobUpdated`, `workflowRunUpdated`): the row now, then
//! again whenever what the subscriber cares about changes, until it reaches a final state.
//! Each poll is one primary-key read; the subscriber's session is re-checked every few polls,
//! so a logout or an expired token ends the feed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;

use super::errors::to_graphql_error;
use crate::app::App;
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};

/// How often a watched row is read, and every how many reads the session is re-checked.
const WATCH_EVERY: Duration = Duration::from_millis(250);
const RECHECK_SESSION_EVERY: u32 = 20;

/// A row a subscription can follow.
pub trait Watched: Send + 'static {
    /// What the subscriber is told about: a change in it is an update.
    type Fingerprint: PartialEq + Send + 'static;
    fn fingerprint(&self) -> Self::Fingerprint;
    /// After a final state the feed ends.
    fn is_final(&self) -> bool;
}

/// The stream of `first` and its updates, read with `fetch` (which checks visibility) and
/// shown as `wrap` makes them. A row that disappears ends the feed; a passing database error
/// is retried on the next poll.
pub fn watch<T, O, F, Fut>(
    app: Arc<App>,
    viewer: Viewer,
    first: T,
    fetch: F,
    wrap: fn(T) -> O,
) -> impl Stream<Item = async_graphql::Result<O>>
where
    T: Watched,
    O: Send + 'static,
    F: Fn(Arc<App>, Viewer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AppResult<T>> + Send,
{
    struct Watch<T: Watched, F> {
        app: Arc<App>,
        viewer: Viewer,
        fetch: F,
        next: Option<T>,
        last: Option<T::Fingerprint>,
        polls: u32,
        done: bool,
    }
    let start = Watch {
        app,
        viewer,
        fetch,
        next: Some(first),
        last: None,
        polls: 0,
        done: false,
    };
    futures_util::stream::unfold(start, move |mut watch| async move {
        loop {
            if watch.done {
                return None;
            }
            let row = match watch.next.take() {
                Some(row) => row,
                None => {
                    tokio::time::sleep(WATCH_EVERY).await;
                    watch.polls += 1;
                    if watch.polls % RECHECK_SESSION_EVERY == 0 {
                        if let Err(err) = watch.app.auth.recheck(&watch.viewer).await {
                            watch.done = true;
                            return Some((Err(to_graphql_error(err)), watch));
                        }
                    }
                    match (watch.fetch)(watch.app.clone(), watch.viewer.clone()).await {
                        Ok(row) => row,
                        Err(AppError::NotFound(_)) => return None,
                        Err(err) => {
                            err.log_if_internal();
                            continue;
                        }
                    }
                }
            };
            let print = row.fingerprint();
            if watch.last.as_ref() == Some(&print) {
                continue;
            }
            watch.done = row.is_final();
            watch.last = Some(print);
            return Some((Ok(wrap(row)), watch));
        }
    })
}
