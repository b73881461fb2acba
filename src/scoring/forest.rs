//! The random forest, grown by linfa-ensemble and kept as our own trees.
//!
//! linfa grows its trees one after another on one thread and rescans every row at every node,
//! so a forest over all of a large workspace's leads would take minutes. Each tree therefore
//! sees a bootstrap sample of at most `sample_cap` rows (diversity is what a forest needs; the
//! trees are deep enough to use what they see), and two halves of the forest grow on two
//! threads.

use linfa::prelude::*;
use linfa_ensemble::EnsembleLearnerParams;
use linfa_trees::{DecisionTree, TreeNode};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::trees::{Combine, Ensemble, Node, Tree};

pub struct ForestParams {
    pub trees: usize,
    pub max_depth: usize,
    /// Rows each tree is grown on, at most.
    pub sample_cap: usize,
    /// Share of the features each tree may split on.
    pub feature_share: f64,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        ForestParams {
            trees: 100,
            max_depth: 16,
            sample_cap: 4000,
            feature_share: 0.6,
            seed: 7,
        }
    }
}

/// linfa's trees send a value left when it is below the split; a missing value becomes this
/// (below every split), and the stored trees send missing values left to match.
const MISSING: f64 = -1.0e300;

/// Grows the forest on `rows` (NaN = missing) and `labels`; P = the share of trees voting
/// converted.
pub fn train(
    rows: &[Vec<f64>],
    labels: &[bool],
    params: &ForestParams,
) -> Result<Ensemble, String> {
    let width = rows.first().map_or(0, Vec::len);
    if rows.is_empty() || width == 0 {
        return Err("no training rows".into());
    }
    let records = Array2::from_shape_fn((rows.len(), width), |(i, j)| {
        let x = rows[i][j];
        if x.is_nan() {
            MISSING
        } else {
            x
        }
    });
    let targets: Array1<usize> = labels.iter().map(|&l| l as usize).collect();
    let dataset = Dataset::new(records, targets);
    let bootstrap = (params.sample_cap as f64 / rows.len() as f64).min(1.0);

    let halves = [params.trees / 2, params.trees - params.trees / 2];
    let grown: Vec<Result<Vec<Tree>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = halves
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .map(|(half, &n)| {
                let dataset = &dataset;
                scope.spawn(move || {
                    let tree_params = DecisionTree::params()
                        .max_depth(Some(params.max_depth))
                        .min_weight_leaf(3.0);
                    let rng = StdRng::seed_from_u64(params.seed.wrapping_add(half as u64));
                    let forest = EnsembleLearnerParams::new_fixed_rng(tree_params, rng)
                        .ensemble_size(n)
                        .bootstrap_proportion(bootstrap)
                        .feature_proportion(params.feature_share)
                        .fit(dataset)
                        .map_err(|e| format!("random forest: {e}"))?;
                    Ok(forest
                        .models
                        .iter()
                        .zip(&forest.model_features)
                        .map(|(tree, features)| convert(tree.root_node(), features, rows, labels))
                        .collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("random forest: a thread panicked".into()))
            })
            .collect()
    });
    let mut trees = Vec::with_capacity(params.trees);
    for half in grown {
        trees.extend(half?);
    }
    Ok(Ensemble {
        combine: Combine::VoteShare,
        base: 0.0,
        trees,
    })
}

/// One linfa tree as stored nodes. `features` maps the tree's columns to the row's. Leaves keep
/// the tree's vote; a split keeps the share of converted training rows that reach it, so the
/// credits along a path add up from the root's share to the vote.
fn convert(
    root: &TreeNode<f64, usize>,
    features: &[usize],
    rows: &[Vec<f64>],
    labels: &[bool],
) -> Tree {
    let mut tree = Tree::default();
    let all: Vec<usize> = (0..rows.len()).collect();
    add(&mut tree, root, features, rows, labels, &all);
    tree
}

fn add(
    tree: &mut Tree,
    node: &TreeNode<f64, usize>,
    features: &[usize],
    rows: &[Vec<f64>],
    labels: &[bool],
    reaching: &[usize],
) -> u32 {
    let at = tree.nodes.len();
    let share = if reaching.is_empty() {
        0.5
    } else {
        reaching.iter().filter(|&&i| labels[i]).count() as f64 / reaching.len() as f64
    };
    let children = node.children();
    let (Some(left), Some(right)) = (children[0].as_deref(), children[1].as_deref()) else {
        tree.nodes.push(Node {
            feature: None,
            threshold: 0.0,
            missing_left: false,
            left: 0,
            right: 0,
            value: node.prediction().unwrap_or(0) as f64,
        });
        return at as u32;
    };
    let (column, split, _) = node.split();
    let feature = features[column];
    tree.nodes.push(Node {
        feature: Some(feature as u32),
        threshold: split,
        missing_left: true,
        left: 0,
        right: 0,
        value: share,
    });
    let (to_left, to_right): (Vec<usize>, Vec<usize>) = reaching.iter().partition(|&&i| {
        let x = rows[i][feature];
        x.is_nan() || x < split
    });
    let l = add(tree, left, features, rows, labels, &to_left);
    let r = add(tree, right, features, rows, labels, &to_right);
    tree.nodes[at].left = l;
    tree.nodes[at].right = r;
    at as u32
}
