//! Training a workspace's model (both learners on the same split, the better one kept) and
//! scoring with a stored one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::boosting::{self, BoostingParams};
use super::features::{FeatureSet, LeadFacts};
use super::forest::{self, ForestParams};
use super::metrics::{held_out, Metrics};
use super::trees::Ensemble;
use super::{Explanation, Factor};

/// Factors kept per lead (the last one sums up the rest): what a person reads, and what is
/// stored for every lead.
pub const TOP_FACTORS: usize = 10;
/// The name of the factor that sums up the smaller ones.
pub const OTHER_FEATURES: &str = "other_features";

/// Fewest closed leads a model is trained on.
pub const MIN_CLOSED_LEADS: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Learner {
    RandomForest,
    GradientBoosting,
}

impl Learner {
    pub fn as_str(self) -> &'static str {
        match self {
            Learner::RandomForest => "random_forest",
            Learner::GradientBoosting => "gradient_boosting",
        }
    }
}

/// One learner's result on the held-out split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub learner: Learner,
    pub metrics: Metrics,
    pub training_ms: u64,
}

/// What a training produced, ready to store.
pub struct Trained {
    pub model: ScoringModel,
    pub metrics: Metrics,
    pub candidates: Vec<Candidate>,
    /// (feature name, share of importance), largest first.
    pub importances: Vec<(String, f64)>,
    pub positives: usize,
    pub negatives: usize,
    pub train_rows: usize,
    pub test_rows: usize,
}

/// A usable model: its features and trees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScoringModel {
    pub learner: Learner,
    pub features: FeatureSet,
    pub ensemble: Ensemble,
}

/// Why no model could be trained.
#[derive(Debug, Clone, PartialEq)]
pub struct NotEnoughData {
    pub positives: usize,
    pub negatives: usize,
}

impl NotEnoughData {
    /// The one rule for "enough to train": at least `MIN_CLOSED_LEADS` closed leads, with
    /// both outcomes among them.
    pub fn check(positives: usize, negatives: usize) -> Result<(), NotEnoughData> {
        if positives + negatives < MIN_CLOSED_LEADS || positives == 0 || negatives == 0 {
            return Err(NotEnoughData {
                positives,
                negatives,
            });
        }
        Ok(())
    }
}

impl std::fmt::Display for NotEnoughData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training needs at least {MIN_CLOSED_LEADS} closed leads with both outcomes; there are \
             {} converted and {} lost or unqualified",
            self.positives, self.negatives
        )
    }
}

/// Trains both learners on the closed leads among `leads` and keeps the one with the better
/// held-out ROC AUC. `progress(percent, message)` reports the stages.
pub fn train(
    leads: &[LeadFacts],
    now: DateTime<Utc>,
    mut progress: impl FnMut(i16, &str),
) -> Result<Trained, NotEnoughData> {
    let closed: Vec<(&LeadFacts, bool)> = leads
        .iter()
        .filter_map(|l| l.label().map(|label| (l, label)))
        .collect();
    let positives = closed.iter().filter(|(_, l)| *l).count();
    let negatives = closed.len() - positives;
    NotEnoughData::check(positives, negatives)?;
    let ids: Vec<i64> = closed.iter().map(|(l, _)| l.id).collect();
    let labels: Vec<bool> = closed.iter().map(|(_, l)| *l).collect();
    let test = held_out(&ids, &labels);
    let (train_set, test_set): (Vec<_>, Vec<_>) = closed.iter().zip(&test).partition(|(_, &t)| !t);
    let train_leads: Vec<&LeadFacts> = train_set.iter().map(|((l, _), _)| *l).collect();
    let train_labels: Vec<bool> = train_set.iter().map(|((_, y), _)| *y).collect();
    let test_leads: Vec<&LeadFacts> = test_set.iter().map(|((l, _), _)| *l).collect();
    let test_labels: Vec<bool> = test_set.iter().map(|((_, y), _)| *y).collect();

    progress(5, "encoding features");
    // Encodings are learnt from the training leads only, so the held-out ones stay unseen.
    let features = FeatureSet::fit(&train_leads, &train_labels);
    let train_rows: Vec<Vec<f64>> = train_leads.iter().map(|l| features.row(l, now)).collect();
    let test_rows: Vec<Vec<f64>> = test_leads.iter().map(|l| features.row(l, now)).collect();

    let mut candidates = Vec::new();
    let mut models = Vec::new();
    progress(10, "growing the random forest");
    let started = std::time::Instant::now();
    if let Ok(ensemble) = forest::train(&train_rows, &train_labels, &ForestParams::default()) {
        models.push((Learner::RandomForest, ensemble, started.elapsed()));
    }
    progress(50, "boosting trees");
    let started = std::time::Instant::now();
    let boosted = boosting::train(
        &train_rows,
        &train_labels,
        &BoostingParams::default(),
        |round, rounds| {
            if round % 20 == 0 {
                progress(50 + (40 * round / rounds) as i16, "boosting trees");
            }
        },
    );
    if let Ok(ensemble) = boosted {
        models.push((Learner::GradientBoosting, ensemble, started.elapsed()));
    }

    progress(90, "validating on held-out leads");
    let mut best: Option<(ScoringModel, Metrics)> = None;
    for (learner, ensemble, took) in models {
        let probabilities: Vec<f64> = test_rows.iter().map(|r| ensemble.probability(r)).collect();
        let metrics = Metrics::of(&probabilities, &test_labels);
        candidates.push(Candidate {
            learner,
            metrics: metrics.clone(),
            training_ms: took.as_millis() as u64,
        });
        if best
            .as_ref()
            .is_none_or(|(_, m)| metrics.roc_auc > m.roc_auc)
        {
            let model = ScoringModel {
                learner,
                features: features.clone(),
                ensemble,
            };
            best = Some((model, metrics));
        }
    }
    let Some((model, metrics)) = best else {
        return Err(NotEnoughData {
            positives,
            negatives,
        });
    };
    let shares = model.ensemble.importances(&train_rows, features.len());
    let mut importances: Vec<(String, f64)> = features
        .features
        .iter()
        .map(|f| f.name())
        .zip(shares)
        .collect();
    importances.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(Trained {
        model,
        metrics,
        candidates,
        importances,
        positives,
        negatives,
        train_rows: train_rows.len(),
        test_rows: test_rows.len(),
    })
}

impl ScoringModel {
    /// Checks a model read back from storage before it is trusted.
    pub fn validate(&self) -> Result<(), String> {
        if self.features.is_empty() {
            return Err("the model has no features".into());
        }
        self.ensemble.validate(self.features.len())
    }

    /// P(convert) for `lead` as a score with its explanation in score points.
    pub fn score(&self, lead: &LeadFacts, now: DateTime<Utc>) -> (i16, Explanation) {
        let row = self.features.row(lead, now);
        let explained = self.ensemble.explain(&row, self.features.len());
        let mut effects: Vec<(usize, f64)> = explained
            .contributions
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, c)| c.abs() > 1e-9)
            .collect();
        effects.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        // Beyond the top ones, the rest is summed into one factor, so it still adds up.
        let rest = (effects.len() > TOP_FACTORS).then(|| effects.split_off(TOP_FACTORS - 1));
        let mut factors: Vec<Factor> = effects
            .iter()
            .map(|&(i, c)| Factor {
                feature: self.features.features[i].name(),
                value: self.features.display(i, lead, now),
                contribution: points(c),
            })
            .collect();
        if let Some(rest) = rest {
            factors.push(Factor {
                feature: OTHER_FEATURES.to_string(),
                value: format!("{} more", rest.len()),
                contribution: points(rest.iter().map(|(_, c)| c).sum::<f64>()),
            });
        }
        let score = (100.0 * explained.probability).round().clamp(0.0, 100.0) as i16;
        (
            score,
            Explanation {
                base: points(explained.base),
                factors,
            },
        )
    }
}

/// A probability share in score points, to 1/10,000 of a point: finer than anyone reads, and
/// the ten factors still add up to well within the rounding of the score.
fn points(share: f64) -> f64 {
    (share * 1_000_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::features::Seniority;

    fn lead(id: i64, budget: f64, converted: bool) -> LeadFacts {
        LeadFacts {
            id,
            status: if converted { "converted" } else { "lost" }.into(),
            lead_source: Some(if id % 3 == 0 { "referral" } else { "website" }.into()),
            company_size: Some((id % 400) as i32),
            estimated_value: None,
            created_at: Utc::now(),
            has_email: true,
            has_phone: id % 2 == 0,
            has_company: false,
            job_title: Some("VP Sales".into()),
            industry: None,
            country: Some(if id % 2 == 0 { "DE" } else { "US" }.into()),
            priority: "medium".into(),
            custom_fields: serde_json::json!({ "budget": budget, "mixed": if id % 4 == 0 { serde_json::json!("n/a") } else { serde_json::json!(id) } }),
            tags: vec![Some("seed".into())],
            score: None,
            calls: id % 3,
            emails: 0,
            meetings: 0,
            notes: 0,
            last_activity_at: None,
        }
    }

    #[test]
    fn both_learners_train_and_every_explanation_adds_up() {
        let leads: Vec<LeadFacts> = (1..=600)
            .map(|i| {
                let budget = ((i * 37) % 100) as f64;
                lead(i, budget, (budget > 60.0) != (i % 13 == 0))
            })
            .collect();
        let trained = train(&leads, Utc::now(), |_, _| {}).expect("enough data");
        assert_eq!(trained.candidates.len(), 2);
        assert!(trained.metrics.roc_auc > 0.85, "{:?}", trained.metrics);
        assert_eq!(trained.importances[0].0, "custom.budget");
        let json = serde_json::to_value(&trained.model).unwrap();
        let model: ScoringModel = serde_json::from_value(json).unwrap();
        model.validate().unwrap();
        for l in &leads[..50] {
            let (score, explanation) = model.score(l, Utc::now());
            let sum = explanation.base
                + explanation
                    .factors
                    .iter()
                    .map(|f| f.contribution)
                    .sum::<f64>();
            assert!((sum - score as f64).abs() <= 0.5 + 1e-9, "{sum} vs {score}");
            assert!(explanation.factors.len() <= TOP_FACTORS);
        }
    }

    #[test]
    fn too_few_or_one_sided_leads_train_nothing() {
        let few: Vec<LeadFacts> = (1..=49).map(|i| lead(i, 1.0, i % 2 == 0)).collect();
        assert!(train(&few, Utc::now(), |_, _| {}).is_err());
        let one_sided: Vec<LeadFacts> = (1..=80).map(|i| lead(i, 1.0, false)).collect();
        let err = train(&one_sided, Utc::now(), |_, _| {}).err().unwrap();
        assert_eq!(
            err,
            NotEnoughData {
                positives: 0,
                negatives: 80
            }
        );
    }

    #[test]
    fn titles_map_to_seniority() {
        for (title, want) in [
            (Some("Chief Revenue Officer"), Seniority::CLevel),
            (Some("CEO & Co-Founder"), Seniority::CLevel),
            (Some("Founder"), Seniority::OwnerOrFounder),
            (Some("Vice President, Sales"), Seniority::Vp),
            (Some("Director of IT"), Seniority::Director),
            (Some("Head of Growth"), Seniority::HeadOrLead),
            (Some("Office Manager"), Seniority::Manager),
            (Some("Engineer"), Seniority::Other),
            (Some("  "), Seniority::None),
            (None, Seniority::None),
        ] {
            assert_eq!(Seniority::of(title), want, "{title:?}");
        }
    }
}
