//! The stored form of a trained model: plain decision trees over a dense feature row, whichever
//! learner grew them, with per-lead explanations from their decision paths.
//!
//! Every node keeps the value the model would give at that point of the path (the share of
//! converted leads for a forest, the raw log-odds step for boosting), so walking a row down a
//! tree credits each split's feature with the change in value it made. Those credits telescope:
//! base + Σ credits = the tree's output exactly, which is what lets an explanation add up to
//! the score.

use serde::{Deserialize, Serialize};

/// A node: a split when `feature` is set, else a leaf.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// The feature index a split tests; `None` for a leaf.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<u32>,
    /// Go left when the value is `< threshold`.
    #[serde(rename = "t", default)]
    pub threshold: f64,
    /// Where a missing value (NaN) goes.
    #[serde(rename = "m", default)]
    pub missing_left: bool,
    #[serde(rename = "l", default)]
    pub left: u32,
    #[serde(rename = "r", default)]
    pub right: u32,
    /// The model's value at this node.
    #[serde(rename = "v")]
    pub value: f64,
}

/// One tree; node 0 is the root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Checks that every child index points forward into the tree and every split names a
    /// feature below `features`, so walking it can neither loop nor index out of bounds.
    pub fn validate(&self, features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a tree has no nodes".into());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(f) = node.feature {
                let (l, r) = (node.left as usize, node.right as usize);
                if f as usize >= features
                    || l <= i
                    || r <= i
                    || l >= self.nodes.len()
                    || r >= self.nodes.len()
                {
                    return Err(format!("node {i} of a tree is malformed"));
                }
            }
            if !node.value.is_finite() || !node.threshold.is_finite() {
                return Err(format!("node {i} of a tree has a non-finite value"));
            }
        }
        Ok(())
    }

    fn step(&self, node: &Node, row: &[f64]) -> usize {
        let x = row[node.feature.unwrap_or(0) as usize];
        let left = if x.is_nan() {
            node.missing_left
        } else {
            x < node.threshold
        };
        (if left { node.left } else { node.right }) as usize
    }

    /// The leaf value for `row`.
    pub fn predict(&self, row: &[f64]) -> f64 {
        let mut i = 0;
        while self.nodes[i].feature.is_some() {
            i = self.step(&self.nodes[i], row);
        }
        self.nodes[i].value
    }

    /// The leaf value for `row`, adding each split's change in value to its feature's credit.
    pub fn explain(&self, row: &[f64], credits: &mut [f64]) -> f64 {
        let mut i = 0;
        while let Some(f) = self.nodes[i].feature {
            let next = self.step(&self.nodes[i], row);
            credits[f as usize] += self.nodes[next].value - self.nodes[i].value;
            i = next;
        }
        self.nodes[i].value
    }

    /// Adds each split's impurity-free importance proxy: the absolute change in value it makes,
    /// weighted by how often training rows pass through it (`visits`).
    pub fn add_importances(&self, visits: &[f64], importances: &mut [f64]) {
        for node in &self.nodes {
            if let Some(f) = node.feature {
                let (l, r) = (node.left as usize, node.right as usize);
                let gain = visits[l] * (self.nodes[l].value - node.value).abs()
                    + visits[r] * (self.nodes[r].value - node.value).abs();
                importances[f as usize] += gain;
            }
        }
    }

    /// How many of `rows` pass through each node.
    pub fn visits<'a>(&self, rows: impl Iterator<Item = &'a [f64]>) -> Vec<f64> {
        let mut visits = vec![0.0; self.nodes.len()];
        for row in rows {
            let mut i = 0;
            visits[0] += 1.0;
            while self.nodes[i].feature.is_some() {
                i = self.step(&self.nodes[i], row);
                visits[i] += 1.0;
            }
        }
        visits
    }
}

/// How the trees' outputs make a probability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Each tree votes 0 or 1; P = the share voting converted (random forest).
    VoteShare,
    /// P = sigmoid(base + Σ tree outputs) (gradient boosting).
    LogOdds,
}

/// A trained ensemble over rows of `features` values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ensemble {
    pub combine: Combine,
    /// Log-odds start for boosting; unused (0) for a forest, whose base is each root's value.
    pub base: f64,
    pub trees: Vec<Tree>,
}

/// A probability with its attribution: `base + Σ contributions = probability`.
pub struct Explained {
    pub probability: f64,
    pub base: f64,
    pub contributions: Vec<f64>,
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Ensemble {
    pub fn validate(&self, features: usize) -> Result<(), String> {
        if self.trees.is_empty() {
            return Err("the model has no trees".into());
        }
        if !self.base.is_finite() {
            return Err("the model's base is not finite".into());
        }
        self.trees.iter().try_for_each(|t| t.validate(features))
    }

    pub fn probability(&self, row: &[f64]) -> f64 {
        let sum: f64 = self.trees.iter().map(|t| t.predict(row)).sum();
        match self.combine {
            Combine::VoteShare => sum / self.trees.len() as f64,
            Combine::LogOdds => sigmoid(self.base + sum),
        }
    }

    /// The probability for `row` and each feature's signed share of it.
    pub fn explain(&self, row: &[f64], features: usize) -> Explained {
        let mut credits = vec![0.0; features];
        let sum: f64 = self
            .trees
            .iter()
            .map(|t| t.explain(row, &mut credits))
            .sum();
        match self.combine {
            Combine::VoteShare => {
                let n = self.trees.len() as f64;
                let base = self.trees.iter().map(|t| t.nodes[0].value).sum::<f64>() / n;
                credits.iter_mut().for_each(|c| *c /= n);
                Explained {
                    probability: sum / n,
                    base,
                    contributions: credits,
                }
            }
            Combine::LogOdds => {
                // Credits add up in log-odds; scaling them all by the secant slope of the
                // sigmoid between the base and this row keeps their signs and ranks and makes
                // them add up to the change in probability exactly.
                let base_logit =
                    self.base + self.trees.iter().map(|t| t.nodes[0].value).sum::<f64>();
                let logit = self.base + sum;
                let (p0, p) = (sigmoid(base_logit), sigmoid(logit));
                let slope = if (logit - base_logit).abs() > 1e-12 {
                    (p - p0) / (logit - base_logit)
                } else {
                    p * (1.0 - p)
                };
                credits.iter_mut().for_each(|c| *c *= slope);
                Explained {
                    probability: p,
                    base: p0,
                    contributions: credits,
                }
            }
        }
    }

    /// Global importances: each feature's share of the trees' weighted changes in value.
    pub fn importances(&self, rows: &[Vec<f64>], features: usize) -> Vec<f64> {
        let mut importances = vec![0.0; features];
        for tree in &self.trees {
            let visits = tree.visits(rows.iter().map(|r| r.as_slice()));
            tree.add_importances(&visits, &mut importances);
        }
        let total: f64 = importances.iter().sum();
        if total > 0.0 {
            importances.iter_mut().for_each(|i| *i /= total);
        }
        importances
    }
}
