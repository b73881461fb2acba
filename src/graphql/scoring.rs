//! Lead scoring over GraphQL: scoring leads, training and activating models, the registry and
//! the score statistics.

use async_graphql::{Context, Object, SimpleObject, ID};
use chrono::{DateTime, Utc};

use super::context::{app, viewer};
use super::errors::GqlResultExt;
use super::filters::selection;
use super::ids::parse_id;
use super::jobs::{Job, JobPayload};
use super::leads::LeadFilter;
use crate::scoring::store::{ModelRow, StatsRow};
use crate::scoring::{Explanation, Factor, Score};

/// One reason behind a score.
#[derive(SimpleObject, Clone)]
pub struct ScoreFactor {
    /// The feature: `source_quality`, `title_seniority`, `custom.<key>`, `tag:<tag>`, ...
    pub feature: String,
    /// Its value for this lead, as text.
    pub value: String,
    /// Score points it added (negative: took away). With `baseScore`, the contributions of
    /// all factors add up to the unrounded score.
    pub contribution: f64,
}

impl From<&Factor> for ScoreFactor {
    fn from(f: &Factor) -> Self {
        ScoreFactor {
            feature: f.feature.clone(),
            value: f.value.clone(),
            contribution: f.contribution,
        }
    }
}

/// The factors of a stored explanation (`score_factors`), largest effect first.
pub fn factors_of(explanation: Option<&serde_json::Value>) -> Vec<ScoreFactor> {
    explanation
        .and_then(|v| serde_json::from_value::<Explanation>(v.clone()).ok())
        .map(|e| e.factors.iter().map(ScoreFactor::from).collect())
        .unwrap_or_default()
}

/// A lead's score and why.
#[derive(SimpleObject)]
pub struct LeadScore {
    /// The lead's ID.
    pub lead_id: ID,
    /// 0-100: round(100 × P(convert)) for a model; the points table's total for the rules.
    pub score: i32,
    /// `model` or `rules`.
    pub scorer: String,
    /// The model version that scored, for `model`.
    pub model_version: Option<i32>,
    /// The score of a lead the model knows nothing about (its average); 0 for the rules.
    pub base_score: f64,
    /// Every factor with an effect, largest first.
    pub factors: Vec<ScoreFactor>,
}

impl From<Score> for LeadScore {
    fn from(s: Score) -> Self {
        LeadScore {
            lead_id: ID(s.lead_id.to_string()),
            score: s.score.into(),
            scorer: s.scorer.as_str().to_string(),
            model_version: s.model_version,
            base_score: s.explanation.base,
            factors: s
                .explanation
                .factors
                .iter()
                .map(ScoreFactor::from)
                .collect(),
        }
    }
}

/// Score bands of the leads you may see.
#[derive(SimpleObject)]
pub struct LeadScoringStats {
    /// Live leads.
    pub total: i64,
    /// Scored 75 or more.
    pub high: i64,
    /// Scored 50-74.
    pub medium: i64,
    /// Scored below 50.
    pub low: i64,
    /// Not scored yet.
    pub unscored: i64,
    /// Mean score of the scored leads.
    pub average: Option<f64>,
    /// Leads scored 0-9, 10-19, ..., 90-100 (ten buckets).
    pub histogram: Vec<i64>,
}

impl From<StatsRow> for LeadScoringStats {
    fn from(r: StatsRow) -> Self {
        LeadScoringStats {
            total: r.total,
            high: r.high,
            medium: r.medium,
            low: r.low,
            unscored: r.unscored,
            average: r.average,
            histogram: r.histogram,
        }
    }
}

/// A model's results on the held-out leads (a stratified fifth of the closed leads).
#[derive(SimpleObject, serde::Deserialize, Default)]
#[serde(default)]
pub struct ModelMetrics {
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Share classified right at the 50 threshold.
    pub accuracy: f64,
    /// Of the leads scored 50 or more, the share that converted.
    pub precision: f64,
    /// Of the converted leads, the share scored 50 or more.
    pub recall: f64,
    /// Mean log loss.
    pub log_loss: f64,
    /// Expected calibration error (ten bins).
    pub calibration_error: f64,
}

/// One learner tried in a training.
#[derive(SimpleObject, serde::Deserialize)]
pub struct ModelCandidate {
    /// `random_forest` or `gradient_boosting`.
    pub learner: String,
    /// Its held-out results.
    pub metrics: ModelMetrics,
    /// How long it took to train, in milliseconds.
    pub training_ms: i64,
}

/// A feature's share of the model's decisions.
#[derive(SimpleObject, serde::Deserialize)]
pub struct FeatureImportance {
    /// The feature.
    pub feature: String,
    /// Its share (all add up to 1).
    pub importance: f64,
}

/// A trained version of the workspace's lead scoring model.
pub struct LeadScoringModel {
    row: ModelRow,
    load_error: Option<String>,
}

/// A trained version of the workspace's lead scoring model.
#[Object]
impl LeadScoringModel {
    /// 1, 2, 3... within the workspace.
    async fn version(&self) -> i32 {
        self.row.version
    }
    /// The learner that won on the held-out leads: `random_forest` or `gradient_boosting`.
    async fn learner(&self) -> &str {
        &self.row.learner
    }
    /// Whether this version scores the workspace's leads.
    async fn active(&self) -> bool {
        self.row.active
    }
    /// The kept learner's held-out results.
    async fn metrics(&self) -> ModelMetrics {
        serde_json::from_value(self.row.metrics.clone()).unwrap_or_default()
    }
    /// Every learner tried, with its results.
    async fn candidates(&self) -> Vec<ModelCandidate> {
        serde_json::from_value(self.row.candidates.clone()).unwrap_or_default()
    }
    /// Converted leads it learnt from (training and held out).
    async fn positives(&self) -> i32 {
        self.row.positives
    }
    /// Lost and unqualified leads it learnt from.
    async fn negatives(&self) -> i32 {
        self.row.negatives
    }
    /// Leads trained on.
    async fn train_rows(&self) -> i32 {
        self.row.train_rows
    }
    /// Leads held out for the metrics.
    async fn test_rows(&self) -> i32 {
        self.row.test_rows
    }
    /// The features it reads, in order.
    async fn features(&self) -> Vec<String> {
        serde_json::from_value(self.row.features.clone()).unwrap_or_default()
    }
    /// Global importances, largest first.
    async fn importances(&self) -> Vec<FeatureImportance> {
        serde_json::from_value(self.row.importances.clone()).unwrap_or_default()
    }
    /// Wall time of the whole training, in milliseconds.
    async fn training_ms(&self) -> i64 {
        self.row.training_ms
    }
    /// Who started the training (none for the weekly schedule).
    async fn started_by_id(&self) -> Option<ID> {
        self.row.started_by.map(|id| ID(id.to_string()))
    }
    /// When it was trained.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// For the active version: why it cannot be loaded (the rule-based scorer answers
    /// meanwhile). None when it loads.
    async fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref()
    }
}

#[derive(Default)]
pub struct ScoringQuery;

#[Object]
impl ScoringQuery {
    /// Score bands of the leads you may see.
    async fn lead_scoring_stats(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<LeadScoringStats> {
        let viewer = viewer(ctx)?;
        Ok(app(ctx).scoring.stats(viewer).await.gql()?.into())
    }

    /// Every trained version of the workspace's model, newest first.
    async fn lead_scoring_models(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<LeadScoringModel>> {
        let viewer = viewer(ctx)?;
        let models = app(ctx).scoring.models(viewer).await.gql()?;
        Ok(models
            .into_iter()
            .map(|(row, load_error)| LeadScoringModel { row, load_error })
            .collect())
    }

    /// The version scoring the workspace's leads; none while the rule-based scorer does.
    async fn active_lead_scoring_model(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<LeadScoringModel>> {
        let viewer = viewer(ctx)?;
        let active = app(ctx).scoring.active_model(viewer).await.gql()?;
        Ok(active.map(|(row, load_error)| LeadScoringModel { row, load_error }))
    }
}

#[derive(Default)]
pub struct ScoringMutation;

#[Object]
impl ScoringMutation {
    /// Scores a lead now (with the active model, else the rules), stores and returns the
    /// score with its factors.
    async fn score_lead(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The lead's ID.")] id: ID,
    ) -> async_graphql::Result<LeadScore> {
        let viewer = viewer(ctx)?;
        let id = parse_id("id", &id).gql()?;
        Ok(app(ctx).scoring.score_lead(viewer, id).await.gql()?.into())
    }

    /// Scores the given leads, or every lead matching the filter, in a background job.
    async fn bulk_score_leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The leads' IDs (or give a filter).")] ids: Option<Vec<ID>>,
        #[graphql(desc = "Which leads (or give IDs).")] filter: Option<LeadFilter>,
    ) -> async_graphql::Result<JobPayload> {
        let viewer = viewer(ctx)?;
        let selection = selection(viewer, ids, filter).gql()?;
        let app = app(ctx);
        let id = app.scoring.start_bulk(viewer, &selection).await.gql()?;
        Ok(JobPayload {
            job: Job(app.jobs.job(viewer, id).await.gql()?),
        })
    }

    /// Trains a new model version on the workspace's closed leads (managers and admins) in a
    /// background job; it becomes active and the leads are rescored. Refused with fewer than
    /// 50 closed leads or without both outcomes.
    async fn retrain_lead_scoring_model(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<JobPayload> {
        let viewer = viewer(ctx)?;
        let app = app(ctx);
        let id = app.scoring.start_retrain(viewer).await.gql()?;
        Ok(JobPayload {
            job: Job(app.jobs.job(viewer, id).await.gql()?),
        })
    }

    /// Makes an earlier (or later) version the active one (managers and admins): a rollback.
    /// The leads are rescored with it.
    async fn activate_lead_scoring_model(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The version to activate.")] version: i32,
    ) -> async_graphql::Result<LeadScoringModel> {
        let viewer = viewer(ctx)?;
        let (row, load_error) = app(ctx).scoring.activate(viewer, version).await.gql()?;
        Ok(LeadScoringModel { row, load_error })
    }
}
