//! The GraphQL API: schema assembly, per-domain query/mutation/subscription objects, wrapper
//! types and error mapping. Thin: parse arguments, call a service, shape the answer.

pub mod activities;
pub mod auth;
pub mod companies;
pub mod connection;
pub mod contacts;
pub mod context;
pub mod documents;
pub mod errors;
pub mod extension;
pub mod feed;
pub mod filters;
pub mod heartbeat;
pub mod history;
pub mod ids;
pub mod imports;
pub mod input_errors;
pub mod jobs;
pub mod leads;
pub mod limits;
pub mod live;
pub mod loaders;
pub mod notifications;
pub mod opportunities;
pub mod prefetch;
pub mod record_api;
pub mod schedules;
pub mod scoring;
pub mod screen;
pub mod stats;
pub mod tasks;
pub mod users;
pub mod watch;
pub mod workflows;

use std::sync::Arc;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::config::GraphqlLimits;

/// Queries: read what you may see.
#[derive(MergedObject, Default)]
pub struct QueryRoot(
    auth::AuthQuery,
    users::UserQuery,
    leads::LeadQuery,
    companies::CompanyQuery,
    contacts::ContactQuery,
    opportunities::OpportunityQuery,
    tasks::TaskQuery,
    stats::StatsQuery,
    jobs::JobQuery,
    history::HistoryQuery,
    schedules::ScheduleQuery,
    imports::ImportQuery,
    scoring::ScoringQuery,
    workflows::WorkflowQuery,
    notifications::NotificationQuery,
    feed::FeedQuery,
);

/// Mutations: each takes its arguments or an `input` and returns a payload.
#[derive(MergedObject, Default)]
pub struct MutationRoot(
    auth::AuthMutation,
    users::UserMutation,
    leads::LeadMutation,
    companies::CompanyMutation,
    contacts::ContactMutation,
    opportunities::OpportunityMutation,
    tasks::TaskMutation,
    leads::LeadActions,
    tasks::TaskActions,
    activities::ActivityMutation,
    jobs::JobMutation,
    schedules::ScheduleMutation,
    imports::ImportMutation,
    scoring::ScoringMutation,
    workflows::WorkflowMutation,
    notifications::NotificationMutation,
);

/// Subscriptions over `/graphql/ws` (graphql-transport-ws or graphql-ws).
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(
    heartbeat::HeartbeatSubscription,
    jobs::JobSubscription,
    workflows::WorkflowSubscription,
    live::LiveSubscription,
);

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Where a schema's operations come from: the HTTP handler applies the limits around
/// execution itself (`limits::admit`, `limits::code_errors`); WebSocket operations are executed
/// by async-graphql-axum, so that schema applies them in an extension.
#[derive(Clone)]
pub enum Transport {
    Http,
    /// With the declared types of the schema's arguments, to name the field of input errors
    /// (`input_errors::InputTypes::of_sdl(&sdl())`).
    WebSocket(Arc<input_errors::InputTypes>, Arc<screen::FieldTypes>),
}

/// Builds the schema. Request data (app, caller, loaders) is attached per request by
/// [`context::request_data`], so the same schema serves every tenant.
pub fn build_schema(limits: &GraphqlLimits, transport: Transport) -> AppSchema {
    let builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
    .limit_complexity(limits.max_complexity);
    match transport {
        Transport::Http => builder.finish(),
        Transport::WebSocket(types, fields) => builder
            .extension(extension::Limits(limits.clone(), types, fields))
            .finish(),
    }
}

/// The SDL `mycrm export-schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    build_schema(&GraphqlLimits::default(), Transport::Http).sdl()
}
