//! What a resolver can know about its request: the app, the caller and the client address.

use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::{Context, Data};

use super::errors::to_graphql_error;
use super::loaders::{
    ActivitiesLoader, CompanyRecordsLoader, RecordLoader, UserLoader, WorkspaceLoader,
};
use crate::app::App;
use crate::auth::Viewer;
use crate::crm::companies::Company;
use crate::crm::contacts::Contact;
use crate::crm::leads::Lead;
use crate::crm::opportunities::Opportunity;
use crate::crm::tasks::Task;
use crate::error::AppError;

/// The outcome of checking the request's access token, decided once per request (or per
/// WebSocket connection) by the HTTP layer.
#[derive(Clone, Debug)]
pub enum AuthState {
    /// No token was sent: public fields work, the others answer UNAUTHENTICATED.
    Anonymous,
    Authenticated(Viewer),
    /// A token was sent but refused (expired, bad signature, revoked session...). Public
    /// fields such as `login` or `refreshToken` still work, so a client can recover.
    Rejected(String),
    /// The token could not be checked: the database is unreachable (or failed). Fields that
    /// need the caller answer SERVICE_UNAVAILABLE (or INTERNAL), never an auth code, so a
    /// client keeps its tokens through an outage.
    Unchecked {
        unavailable: bool,
    },
}

impl AuthState {
    /// The caller, or UNAUTHENTICATED saying why (the token was refused, or none was sent).
    /// The one mapping for GraphQL and the REST routes.
    pub fn require(&self) -> Result<&Viewer, AppError> {
        match self {
            AuthState::Authenticated(viewer) => Ok(viewer),
            AuthState::Rejected(reason) => Err(AppError::unauthenticated(reason.clone())),
            AuthState::Unchecked { unavailable: true } => Err(AppError::Unavailable(
                anyhow::anyhow!("the access token could not be checked"),
            )),
            AuthState::Unchecked { unavailable: false } => Err(AppError::Internal(
                anyhow::anyhow!("the access token could not be checked"),
            )),
            AuthState::Anonymous => Err(Self::authentication_required()),
        }
    }

    pub fn authentication_required() -> AppError {
        AppError::unauthenticated(
            "authentication required: send an access token as `Authorization: Bearer <token>`",
        )
    }
}

/// Facts about the client, for throttling and audit.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: String,
}

/// How long the data of [`request_data`] lives: loader caches are only safe for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// One HTTP request: loaders cache what they load.
    Request,
    /// A WebSocket connection, which may live for hours: loaders never cache, so every
    /// subscription event sees the records as they are then.
    Connection,
}

/// Everything the schema needs per request or per WebSocket connection.
pub fn request_data(
    app: Arc<App>,
    auth: AuthState,
    client: ClientInfo,
    lifetime: Lifetime,
) -> Data {
    let viewer = match &auth {
        AuthState::Authenticated(viewer) => Some(viewer.clone()),
        _ => None,
    };
    // Every loader caches for the request: a list page primes it with the relations its rows
    // select (see `prefetch`), and rows sharing an owner or company load it once.
    let caching = lifetime == Lifetime::Request;
    fn cached<T: Send + Sync + 'static>(loader: T, caching: bool) -> DataLoader<T, HashMapCache> {
        let loader = DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default());
        loader.enable_all_cache(caching);
        loader
    }
    let mut data = Data::default();
    data.insert(cached(WorkspaceLoader::new(app.clone()), caching));
    data.insert(cached(
        UserLoader::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        RecordLoader::<Company>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        RecordLoader::<Lead>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        RecordLoader::<Opportunity>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        CompanyRecordsLoader::<Contact>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        CompanyRecordsLoader::<Opportunity>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        RecordLoader::<Contact>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(
        RecordLoader::<Task>::new(app.clone(), viewer.clone()),
        caching,
    ));
    data.insert(cached(ActivitiesLoader::new(app.clone(), viewer), caching));
    data.insert(app);
    data.insert(auth);
    data.insert(client);
    data
}

/// The request's DataLoader of type `T`.
pub fn loader<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> &'a DataLoader<T, HashMapCache> {
    ctx.data_unchecked::<DataLoader<T, HashMapCache>>()
}

pub fn app<'a>(ctx: &Context<'a>) -> &'a Arc<App> {
    ctx.data_unchecked::<Arc<App>>()
}

/// The caller, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Viewer> {
    match ctx.data_opt::<AuthState>() {
        Some(state) => state.require().map_err(to_graphql_error),
        None => Err(to_graphql_error(AuthState::authentication_required())),
    }
}

/// The caller when there is one (public fields that behave better for a known caller).
pub fn optional_viewer<'a>(ctx: &Context<'a>) -> Option<&'a Viewer> {
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(viewer)) => Some(viewer),
        _ => None,
    }
}

pub fn client_ip<'a>(ctx: &Context<'a>) -> &'a str {
    ctx.data_opt::<ClientInfo>()
        .map(|c| c.ip.as_str())
        .unwrap_or("unknown")
}

/// The records of one kind that belong to a company, newest first (a bounded preview), loaded
/// in one batch per kind and request.
pub async fn of_company<R: crate::crm::query::CompanyChild + Clone + Sync>(
    ctx: &Context<'_>,
    company: i64,
) -> async_graphql::Result<Vec<R>> {
    Ok(loader::<CompanyRecordsLoader<R>>(ctx)
        .load_one(company)
        .await?
        .unwrap_or_default())
}

/// A record linked from another one, loaded in one batch per kind and request; `None` when
/// there is no link or the caller may not see the record.
pub async fn linked<R: crate::crm::query::Listable + Clone + Sync>(
    ctx: &Context<'_>,
    id: Option<i64>,
) -> async_graphql::Result<Option<R>> {
    let Some(id) = id else {
        return Ok(None);
    };
    loader::<RecordLoader<R>>(ctx).load_one(id).await
}
