//! A list page loads the relations its client selected up front, one batch per relation, into
//! the request's loader caches; its rows then find them there.
//!
//! Why: a row's own `load_one` is batched by a 1 ms timer. On a busy server the rows of one
//! page are not all resolved within that window (the executor yields between them), so the
//! batch splits into many small queries and the page costs ten times the SQL it should. Asking
//! for every ID of the page at once keeps it to one query per relation, whatever the load.

use std::collections::HashSet;
use std::hash::Hash;

use async_graphql::dataloader::Loader;
use async_graphql::Context;

use super::context::loader;
use super::loaders::{ActivitiesLoader, CompanyRecordsLoader, RecordLoader, UserLoader};
use crate::auth::UserId;
use crate::crm::activities::RecordRef;
use crate::crm::query::{CompanyChild, Listable};

/// Whether the rows of the current list field select `field` (under `nodes` or `edges.node`).
pub fn selected(ctx: &Context<'_>, field: &str) -> bool {
    let list = ctx.look_ahead();
    list.field("nodes").field(field).exists()
        || list.field("edges").field("node").field(field).exists()
}

/// Loads `keys` through the request's `L` loader when the rows select `field`.
async fn prime<L, K>(
    ctx: &Context<'_>,
    field: &str,
    keys: Vec<Option<K>>,
) -> async_graphql::Result<()>
where
    L: Loader<K, Error = async_graphql::Error> + Send + Sync + 'static,
    K: Send + Sync + Hash + Eq + Clone + 'static,
{
    if !selected(ctx, field) {
        return Ok(());
    }
    // Plain vectors in, not iterators: a future holding borrowing closures is not `Send`
    // enough for the resolvers.
    let keys: HashSet<K> = keys.into_iter().flatten().collect();
    if keys.is_empty() {
        return Ok(());
    }
    loader::<L>(ctx).load_many(keys).await?;
    Ok(())
}

/// Users the rows point at through `field` (`owner`, `assignedTo`, ...).
pub async fn users(
    ctx: &Context<'_>,
    field: &str,
    ids: Vec<Option<UserId>>,
) -> async_graphql::Result<()> {
    prime::<UserLoader, UserId>(ctx, field, ids).await
}

/// Records of kind `R` the rows point at through `field` (`company`, `lead`, ...).
pub async fn records<R: Listable + Clone + Sync>(
    ctx: &Context<'_>,
    field: &str,
    ids: Vec<Option<i64>>,
) -> async_graphql::Result<()> {
    prime::<RecordLoader<R>, i64>(ctx, field, ids).await
}

/// The records of kind `R` belonging to each company row (`Company.contacts`, ...).
pub async fn of_companies<R: CompanyChild + Clone + Sync>(
    ctx: &Context<'_>,
    field: &str,
    companies: Vec<i64>,
) -> async_graphql::Result<()> {
    prime::<CompanyRecordsLoader<R>, i64>(ctx, field, companies.into_iter().map(Some).collect())
        .await
}

/// The activities of each row.
pub async fn activities(ctx: &Context<'_>, records: Vec<RecordRef>) -> async_graphql::Result<()> {
    prime::<ActivitiesLoader, RecordRef>(ctx, "activities", records.into_iter().map(Some).collect())
        .await
}
