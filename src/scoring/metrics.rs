//! How a model is judged, on leads it was not trained on: the held-out split and the metrics
//! stored with every version.

use serde::{Deserialize, Serialize};

/// A reproducible, stratified 80/20 split: within each class, leads are ordered by a hash of
/// their ID (splitmix64) and the first fifth is held out. The same rule in
/// `bench/sklearn_baseline.py` gives scikit-learn the same split.
pub fn held_out(ids: &[i64], labels: &[bool]) -> Vec<bool> {
    let mut test = vec![false; ids.len()];
    for class in [true, false] {
        let mut members: Vec<usize> = (0..ids.len()).filter(|&i| labels[i] == class).collect();
        members.sort_by_key(|&i| (splitmix64(ids[i] as u64), ids[i]));
        for &i in &members[..members.len() / 5] {
            test[i] = true;
        }
    }
    test
}

pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A model's results on the held-out leads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub roc_auc: f64,
    /// At the 0.5 threshold (score 50).
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub log_loss: f64,
    /// Expected calibration error over ten equal-width probability bins.
    pub calibration_error: f64,
}

impl Metrics {
    pub fn of(probabilities: &[f64], labels: &[bool]) -> Metrics {
        let predicted = |p: f64| p >= 0.5;
        let tp = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| predicted(p) && l)
            .count() as f64;
        let fp = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| predicted(p) && !l)
            .count() as f64;
        let fneg = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| !predicted(p) && l)
            .count() as f64;
        let correct = probabilities
            .iter()
            .zip(labels)
            .filter(|(&p, &l)| predicted(p) == l)
            .count() as f64;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Metrics {
            roc_auc: roc_auc(probabilities, labels),
            accuracy: ratio(correct, labels.len() as f64),
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fneg),
            log_loss: super::boosting::log_loss(
                probabilities.iter().copied().zip(labels.iter().copied()),
            ),
            calibration_error: calibration_error(probabilities, labels),
        }
    }
}

/// Area under the ROC curve from ranks (ties share their average rank).
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let sum: f64 = ranks
        .iter()
        .zip(labels)
        .filter(|(_, &l)| l)
        .map(|(r, _)| r)
        .sum();
    (sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

fn calibration_error(probabilities: &[f64], labels: &[bool]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10]; // (Σp, Σlabel, n)
    for (&p, &l) in probabilities.iter().zip(labels) {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += l as u8 as f64;
        bins[b].2 += 1;
    }
    let n = probabilities.len().max(1) as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|(p, l, _)| (p - l).abs() / n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_perfect_random_and_inverted_rankings() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(roc_auc(&[0.5, 0.5, 0.5, 0.5], &labels), 0.5);
    }

    #[test]
    fn split_is_stratified_and_stable() {
        let ids: Vec<i64> = (1..=100).collect();
        let labels: Vec<bool> = ids.iter().map(|i| i % 4 == 0).collect();
        let test = held_out(&ids, &labels);
        assert_eq!(test.iter().filter(|&&t| t).count(), 5 + 15);
        assert_eq!(
            test.iter().zip(&labels).filter(|(&t, &l)| t && l).count(),
            5
        );
        assert_eq!(test, held_out(&ids, &labels));
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn calibration_error_is_zero_when_rates_match() {
        let p = [0.25, 0.25, 0.25, 0.25];
        assert!(calibration_error(&p, &[true, false, false, false]).abs() < 1e-12);
        let m = Metrics::of(&[0.9, 0.1], &[true, false]);
        assert_eq!((m.accuracy, m.precision, m.recall), (1.0, 1.0, 1.0));
    }
}
