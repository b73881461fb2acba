//! The integration tests: one binary (one link, one PostgreSQL) with a module per area.

mod harness;

mod activities;
mod auth;
mod batching;
mod browser;
mod bulk;
mod companies;
mod contacts;
mod conversion;
mod csv_export;
mod csv_import;
mod demo;
mod events;
mod feed;
mod graphql_http;
mod history;
mod jobs;
mod leads;
mod live;
mod notifications;
mod opportunities;
mod ordering;
mod permissions;
mod playground;
mod process;
mod schedules;
mod schema;
mod scoring;
mod sinks;
mod stats;
mod subscriptions;
mod tasks;
mod time_triggers;
mod users;
mod workflows;
