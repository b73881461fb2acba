//! What a resolver can know about its request: the app, the caller and the client address.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
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
}

/// Facts about the client, for throttling and audit.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    pub ip: String,
}

/// Everything the schema needs per request or per WebSocket connection.
pub fn request_data(app: Arc<App>, auth: AuthState, client: ClientInfo) -> Data {
    let viewer = match &auth {
        AuthState::Authenticated(viewer) => Some(viewer.clone()),
        _ => None,
    };
    let mut data = Data::default();
    data.insert(DataLoader::new(
        WorkspaceLoader::new(app.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        UserLoader::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        RecordLoader::<Company>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        RecordLoader::<Lead>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        RecordLoader::<Opportunity>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        CompanyRecordsLoader::<Contact>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        CompanyRecordsLoader::<Opportunity>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        RecordLoader::<Contact>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        RecordLoader::<Task>::new(app.clone(), viewer.clone()),
        tokio::spawn,
    ));
    data.insert(DataLoader::new(
        ActivitiesLoader::new(app.clone(), viewer),
        tokio::spawn,
    ));
    data.insert(app);
    data.insert(auth);
    data.insert(client);
    data
}

pub fn app<'a>(ctx: &Context<'a>) -> &'a Arc<App> {
    ctx.data_unchecked::<Arc<App>>()
}

/// The caller, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Viewer> {
    match ctx.data_opt::<AuthState>() {
        Some(AuthState::Authenticated(viewer)) => Ok(viewer),
        Some(AuthState::Rejected(reason)) => {
            Err(to_graphql_error(AppError::unauthenticated(reason.clone())))
        }
        _ => Err(to_graphql_error(AppError::unauthenticated(
            "authentication required: send an access token as `Authorization: Bearer <token>`",
        ))),
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
    Ok(ctx
        .data_unchecked::<DataLoader<CompanyRecordsLoader<R>>>()
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
    ctx.data_unchecked::<DataLoader<RecordLoader<R>>>()
        .load_one(id)
        .await
}
