//! Histogram gradient boosting for log loss: the second learner, trained on the same rows and
//! kept when it validates better than the forest.
//!
//! Values are bucketed once into at most 255 bins per feature (quantiles of the training rows;
//! bin 0 is "missing"), so finding a split is a scan over bin sums instead of over rows. Trees
//! grow best-first up to `max_leaves`; a node's histogram is built for the smaller child and the
//! larger child's is the parent's minus it. A missing value goes to whichever side gains more.
//! Boosting stops early when log loss on a slice of the training rows stops improving.

use super::trees::{sigmoid, Combine, Ensemble, Node, Tree};

pub struct BoostingParams {
    pub max_rounds: usize,
    pub learning_rate: f64,
    pub max_leaves: usize,
    pub min_leaf: usize,
    pub l2: f64,
    /// Rounds without improvement on the early-stopping slice before stopping.
    pub patience: usize,
}

impl Default for BoostingParams {
    fn default() -> Self {
        BoostingParams {
            max_rounds: 300,
            learning_rate: 0.1,
            max_leaves: 31,
            min_leaf: 20,
            l2: 1.0,
            patience: 15,
        }
    }
}

const MAX_BINS: usize = 255;

/// Per-feature bin edges: bin b (1-based) holds values below `cuts[b - 1]` and at or above
/// `cuts[b - 2]`; a cut is the midpoint between neighbouring distinct values.
struct Bins {
    cuts: Vec<Vec<f64>>,
}

impl Bins {
    fn fit(rows: &[Vec<f64>], width: usize) -> Bins {
        let cuts = (0..width)
            .map(|j| {
                let mut values: Vec<f64> =
                    rows.iter().map(|r| r[j]).filter(|x| !x.is_nan()).collect();
                values.sort_by(f64::total_cmp);
                values.dedup();
                // At most MAX_BINS bins for values, so at most MAX_BINS - 1 cuts: with bin 0
                // for missing values every bin fits a u8. Positions are whole numbers, so no
                // rounding can add a cut.
                let bins = MAX_BINS.min(values.len());
                let mut cuts: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
                for b in 1..bins {
                    let i = b * values.len() / bins;
                    let cut = (values[i - 1] + values[i]) / 2.0;
                    if cuts.last() != Some(&cut) {
                        cuts.push(cut);
                    }
                }
                cuts
            })
            .collect();
        Bins { cuts }
    }

    fn bin(&self, j: usize, x: f64) -> u8 {
        if x.is_nan() {
            0
        } else {
            let bin = self.cuts[j].partition_point(|&c| c <= x) + 1;
            debug_assert!(bin <= MAX_BINS);
            bin as u8
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: usize,
}

impl Sums {
    fn add(&mut self, g: f64, h: f64) {
        self.g += g;
        self.h += h;
        self.n += 1;
    }
    fn minus(self, o: Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
    fn plus(self, o: Sums) -> Sums {
        Sums {
            g: self.g + o.g,
            h: self.h + o.h,
            n: self.n + o.n,
        }
    }
}

/// One histogram: `[feature][bin]`.
type Histogram = Vec<[Sums; MAX_BINS + 1]>;

struct Split {
    gain: f64,
    feature: usize,
    /// Bins 1..=bin go left.
    bin: usize,
    missing_left: bool,
}

struct Grower<'a> {
    binned: &'a [Vec<u8>],
    bins: &'a Bins,
    grad: &'a [f64],
    hess: &'a [f64],
    params: &'a BoostingParams,
}

struct Leaf {
    node: usize,
    rows: Vec<usize>,
    hist: Histogram,
    sums: Sums,
    split: Option<Split>,
}

impl Grower<'_> {
    fn histogram(&self, rows: &[usize]) -> Histogram {
        let width = self.binned.len();
        let mut hist = vec![[Sums::default(); MAX_BINS + 1]; width];
        for (j, column) in self.binned.iter().enumerate() {
            let h = &mut hist[j];
            for &i in rows {
                h[column[i] as usize].add(self.grad[i], self.hess[i]);
            }
        }
        hist
    }

    fn value(&self, s: Sums) -> f64 {
        -s.g / (s.h + self.params.l2)
    }

    fn score(&self, s: Sums) -> f64 {
        s.g * s.g / (s.h + self.params.l2)
    }

    fn best_split(&self, hist: &Histogram, total: Sums) -> Option<Split> {
        let mut best: Option<Split> = None;
        let parent = self.score(total);
        for (j, h) in hist.iter().enumerate() {
            let missing = h[0];
            let mut left = Sums::default();
            let splittable = self.bins.cuts[j].len();
            for (b, &bin) in h.iter().enumerate().take(splittable + 1).skip(1) {
                left = left.plus(bin);
                for missing_left in [false, true] {
                    let l = if missing_left {
                        left.plus(missing)
                    } else {
                        left
                    };
                    let r = total.minus(l);
                    if l.n < self.params.min_leaf || r.n < self.params.min_leaf {
                        continue;
                    }
                    let gain = self.score(l) + self.score(r) - parent;
                    if gain > 1e-9 && best.as_ref().is_none_or(|s| gain > s.gain) {
                        best = Some(Split {
                            gain,
                            feature: j,
                            bin: b,
                            missing_left,
                        });
                    }
                    if missing.n == 0 {
                        break;
                    }
                }
            }
        }
        best
    }

    fn leaf(&self, node: usize, rows: Vec<usize>, hist: Histogram) -> Leaf {
        let sums = hist[0].iter().fold(Sums::default(), |a, &b| a.plus(b));
        let split = self.best_split(&hist, sums);
        Leaf {
            node,
            rows,
            hist,
            sums,
            split,
        }
    }

    fn grow(&self, rows: Vec<usize>) -> Tree {
        let lr = self.params.learning_rate;
        let hist = self.histogram(&rows);
        let mut tree = Tree::default();
        let root = self.leaf(0, rows, hist);
        tree.nodes.push(leaf_node(lr * self.value(root.sums)));
        let mut open = vec![root];
        let mut leaves = 1;
        while leaves < self.params.max_leaves {
            let Some(pick) = open
                .iter()
                .enumerate()
                .filter_map(|(k, l)| l.split.as_ref().map(|s| (k, s.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(k, _)| k)
            else {
                break;
            };
            let leaf = open.swap_remove(pick);
            let split = leaf.split.as_ref().expect("picked for its split");
            let column = &self.binned[split.feature];
            let (left_rows, right_rows): (Vec<usize>, Vec<usize>) =
                leaf.rows.iter().partition(|&&i| {
                    let b = column[i] as usize;
                    if b == 0 {
                        split.missing_left
                    } else {
                        b <= split.bin
                    }
                });
            let (small, large_is_left) = if left_rows.len() <= right_rows.len() {
                (&left_rows, false)
            } else {
                (&right_rows, true)
            };
            let small_hist = self.histogram(small);
            let mut large_hist = leaf.hist;
            for (large, small) in large_hist.iter_mut().zip(&small_hist) {
                for (l, s) in large.iter_mut().zip(small) {
                    *l = l.minus(*s);
                }
            }
            let (left_hist, right_hist) = if large_is_left {
                (large_hist, small_hist)
            } else {
                (small_hist, large_hist)
            };
            let (l, r) = (tree.nodes.len(), tree.nodes.len() + 1);
            let cuts = &self.bins.cuts[split.feature];
            tree.nodes[leaf.node] = Node {
                feature: Some(split.feature as u32),
                threshold: cuts[split.bin - 1],
                missing_left: split.missing_left,
                left: l as u32,
                right: r as u32,
                value: tree.nodes[leaf.node].value,
            };
            let left = self.leaf(l, left_rows, left_hist);
            let right = self.leaf(r, right_rows, right_hist);
            tree.nodes.push(leaf_node(lr * self.value(left.sums)));
            tree.nodes.push(leaf_node(lr * self.value(right.sums)));
            open.push(left);
            open.push(right);
            leaves += 1;
        }
        tree
    }
}

fn leaf_node(value: f64) -> Node {
    Node {
        feature: None,
        threshold: 0.0,
        missing_left: false,
        left: 0,
        right: 0,
        value,
    }
}

/// Boosts trees on `rows` (NaN = missing) and `labels`. Every tenth row (by position) is held
/// back to decide when to stop; the returned model keeps the rounds that did best on it.
pub fn train(
    rows: &[Vec<f64>],
    labels: &[bool],
    params: &BoostingParams,
    mut progress: impl FnMut(usize, usize),
) -> Result<Ensemble, String> {
    let width = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || width == 0 {
        return Err("no training rows".into());
    }
    let (fit_rows, stop_rows): (Vec<usize>, Vec<usize>) =
        (0..rows.len()).partition(|i| i % 10 != 9);
    let fit: Vec<Vec<f64>> = fit_rows.iter().map(|&i| rows[i].clone()).collect();
    let bins = Bins::fit(&fit, width);
    let binned: Vec<Vec<u8>> = (0..width)
        .map(|j| rows.iter().map(|r| bins.bin(j, r[j])).collect())
        .collect();
    let y: Vec<f64> = labels.iter().map(|&l| if l { 1.0 } else { 0.0 }).collect();
    let positives = fit_rows.iter().filter(|&&i| labels[i]).count() as f64;
    let prior = (positives / fit_rows.len() as f64).clamp(1e-6, 1.0 - 1e-6);
    let base = (prior / (1.0 - prior)).ln();

    let mut raw = vec![base; rows.len()];
    let mut grad = vec![0.0; rows.len()];
    let mut hess = vec![0.0; rows.len()];
    let mut trees = Vec::new();
    let (mut best_loss, mut best_rounds) = (f64::INFINITY, 0);
    for round in 0..params.max_rounds {
        for &i in &fit_rows {
            let p = sigmoid(raw[i]);
            grad[i] = p - y[i];
            hess[i] = (p * (1.0 - p)).max(1e-12);
        }
        let grower = Grower {
            binned: &binned,
            bins: &bins,
            grad: &grad,
            hess: &hess,
            params,
        };
        let tree = grower.grow(fit_rows.clone());
        for (i, r) in raw.iter_mut().enumerate() {
            *r += tree.predict(&rows[i]);
        }
        trees.push(tree);
        let loss = log_loss(stop_rows.iter().map(|&i| (sigmoid(raw[i]), labels[i])));
        if loss < best_loss - 1e-7 {
            (best_loss, best_rounds) = (loss, round + 1);
        } else if round + 1 - best_rounds >= params.patience {
            break;
        }
        progress(round + 1, params.max_rounds);
    }
    trees.truncate(best_rounds.max(1));
    Ok(Ensemble {
        combine: Combine::LogOdds,
        base,
        trees,
    })
}

/// Mean log loss of (probability, label) pairs, probabilities clipped away from 0 and 1.
pub fn log_loss(pairs: impl Iterator<Item = (f64, bool)>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for (p, label) in pairs {
        let p = p.clamp(1e-15, 1.0 - 1e-15);
        sum -= if label { p.ln() } else { (1.0 - p).ln() };
        n += 1;
    }
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bin_fits_a_byte_whatever_the_number_of_distinct_values() {
        for n in [1, 2, 254, 255, 256, 257, 300, 1_000, 36_170] {
            let rows: Vec<Vec<f64>> = (0..n).map(|i| vec![i as f64 * 0.37]).collect();
            let bins = Bins::fit(&rows, 1);
            assert!(
                bins.cuts[0].len() < MAX_BINS,
                "{n} values: {} cuts",
                bins.cuts[0].len()
            );
            let top = rows.iter().map(|r| bins.bin(0, r[0])).max().unwrap();
            assert!(
                top as usize == bins.cuts[0].len() + 1 && top > 0,
                "{n} values"
            );
            assert_eq!(bins.bin(0, f64::NAN), 0);
        }
    }
}
