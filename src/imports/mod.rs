//! CSV in and out of the CRM (the REST shim's domain): the columns of each kind
//! (`columns`), streamed exports and templates (`export`).

pub mod columns;
pub mod export;
