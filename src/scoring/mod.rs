//! Lead scoring: how likely each lead is to convert, with the reasons.
//!
//! A workspace with at least 50 closed leads of both outcomes trains a model (`model`): a
//! random forest grown by linfa and a histogram gradient boosting, the better on a held-out
//! split kept. Without an active, loadable model the points table (`rules`) answers. Every
//! score is stored on its lead with who produced it and an explanation whose contributions
//! plus the base add up to the score (`trees` for how). Scores change only through
//! `service`, which also writes the `lead.score_changed` events workflows listen for.

pub mod boosting;
pub mod features;
pub mod forest;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod rules;
pub mod service;
pub mod store;
pub mod trees;

use serde::{Deserialize, Serialize};

/// One reason behind a score: a feature, its value for this lead, and the score points it
/// added (negative: took away).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Factor {
    pub feature: String,
    pub value: String,
    pub contribution: f64,
}

/// Why a lead has its score: `base + Σ factors' contributions = 100 × P(convert)`, which the
/// score is rounded from (the rule scorer's base is 0 and its sum is the score).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Explanation {
    /// The model's average score (the score of a lead it knows nothing about).
    pub base: f64,
    /// Largest effect first.
    pub factors: Vec<Factor>,
}

/// Which scorer produced a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scorer {
    Rules,
    Model,
}

impl Scorer {
    pub fn as_str(self) -> &'static str {
        match self {
            Scorer::Rules => "rules",
            Scorer::Model => "model",
        }
    }
}

/// A lead's score as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub lead_id: i64,
    pub score: i16,
    pub scorer: Scorer,
    pub model_version: Option<i32>,
    pub explanation: Explanation,
}
