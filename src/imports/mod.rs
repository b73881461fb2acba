//! CSV in and out of the CRM (the REST shim's domain): the columns of each kind
//! (`columns`), streamed exports and templates (`export`), and imports: decoding (`decode`),
//! header matching (`mapping`), cell parsing (`values`), rows as domain inputs (`records`),
//! one row per record (`seen`).

pub mod columns;
pub mod decode;
pub mod engine;
pub mod export;
pub mod mapping;
pub mod parse;
pub mod records;
pub mod seen;
pub mod service;
pub mod store;
pub mod undo;
pub mod values;
