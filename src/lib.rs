//! MyCRM: a self-hostable CRM backend. See DESIGN.md for the layers:
//! `http` → `graphql` → domains (`auth`, ...) → `db`. Arrows point down only.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crm;
pub mod db;
pub mod demo;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod imports;
pub mod jobs;
pub mod mail;
pub mod notifications;
pub mod pagination;
pub mod scoring;
pub mod server;
pub mod telemetry;
pub mod validation;
pub mod workers;
pub mod workflows;
