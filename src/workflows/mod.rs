//! Workflow automation (issue 7): when a record changes in a way a workflow watches and its
//! conditions hold, run its actions, durably.
//!
//! - `definition`: what a workflow is (entity, trigger, conditions, actions), parsed with
//!   the path of every problem; `validate`: the checks that need the database.
//! - `template`, `conditions`, `context`: what a step sees and how it is evaluated.
//! - `engine`: the change-stream consumer that starts runs (loop guard, rate cap);
//!   `time_triggers`: the minute tick that starts runs at moments (schedules, date fields).
//! - `program`, `runner`, `actions`, `webhook`: executing runs step by step as jobs.
//! - `store`, `service`: the tables and the API's operations.

pub mod actions;
pub mod conditions;
pub mod context;
pub mod definition;
pub mod engine;
pub mod program;
pub mod runner;
pub mod service;
pub mod store;
pub mod template;
pub mod time_triggers;
pub mod validate;
pub mod webhook;
