//! forust trees laid out for fast batch inference.
//!
//! Why: forust keeps a tree as a `Vec<Node>` of 80-byte nodes and walks it with a
//! branch per level and a `Vec<f64>` per tree and call; scoring 256 candidates
//! with 3 × 60 trees cost about 0.9 ms here, at the edge of the 1 ms p99 bar. A
//! depth-wise booster's trees are shallow (`max_depth` 5), so each one is stored
//! here as a *complete* binary tree of its depth: split features and thresholds
//! in heap order and one leaf value per bottom slot. A leaf that sits higher up
//! is copied into every bottom slot below it, so the walk needs no leaf test: it
//! is `depth` steps of `i = 2i + 1 + (x >= t)` with no unpredictable branch.
//!
//! The result is bit-identical to `GradientBooster::predict`: the same
//! comparisons (`x < split` goes left, in f64), the same leaf values, summed in
//! the same tree order onto the same base score. Missing values (NaN) follow
//! forust's per-node missing branch, which this layout does not hold, so a batch
//! that contains one is handed back to forust (`None`); our features are finite.

use forust_ml::tree::Tree;
use forust_ml::GradientBooster;

/// Deeper trees are left to forust: a complete tree of depth d has 2^d leaves.
const MAX_DEPTH: u32 = 12;

/// One tree in complete heap order.
#[derive(Debug, Clone)]
struct CompleteTree {
    depth: u32,
    /// `2^depth - 1` internal slots.
    features: Vec<u32>,
    thresholds: Vec<f64>,
    /// `2^depth` leaf values.
    leaves: Vec<f32>,
}

impl CompleteTree {
    fn from_tree(tree: &Tree) -> Option<Self> {
        let depth = tree_depth(tree, 0, 0)?;
        if depth > MAX_DEPTH {
            return None;
        }
        let inner = (1usize << depth) - 1;
        let mut out =
            Self { depth, features: vec![0; inner], thresholds: vec![0.0; inner], leaves: vec![0.0; inner + 1] };
        out.fill(tree, 0, 0, 0)?;
        Some(out)
    }

    /// Copies forust node `node` into heap slot `slot` at `level`.
    fn fill(&mut self, tree: &Tree, node: usize, slot: usize, level: u32) -> Option<()> {
        let n = tree.nodes.get(node)?;
        if n.is_leaf {
            // Every bottom slot under `slot` gets the leaf; the splits above them
            // are left at (feature 0, threshold 0): either way leads to the same value.
            let below = self.depth - level;
            let first = (slot + 1) * (1 << below) - 1 - self.features.len();
            self.leaves[first..first + (1 << below)].fill(n.weight_value);
            return Some(());
        }
        self.features[slot] = u32::try_from(n.split_feature).ok()?;
        self.thresholds[slot] = n.split_value;
        self.fill(tree, n.left_child, 2 * slot + 1, level + 1)?;
        self.fill(tree, n.right_child, 2 * slot + 2, level + 1)
    }

    #[inline]
    fn leaf(&self, row: &[f32]) -> f32 {
        let mut slot = 0usize;
        for _ in 0..self.depth {
            let x = f64::from(row[self.features[slot] as usize]);
            slot = 2 * slot + 1 + usize::from(x >= self.thresholds[slot]);
        }
        self.leaves[slot - self.features.len()]
    }
}

/// Depth of the subtree at `node` (None on a malformed tree: a cycle or a bad index).
fn tree_depth(tree: &Tree, node: usize, level: u32) -> Option<u32> {
    let n = tree.nodes.get(node)?;
    if n.is_leaf {
        return Some(level);
    }
    if level > MAX_DEPTH {
        return Some(level);
    }
    Some(tree_depth(tree, n.left_child, level + 1)?.max(tree_depth(tree, n.right_child, level + 1)?))
}

/// One booster's prediction trees, compiled.
#[derive(Debug, Clone)]
pub struct CompiledBooster {
    base_score: f64,
    trees: Vec<CompleteTree>,
    features: usize,
}

impl CompiledBooster {
    /// Compiles the trees `booster.predict` uses; None if one is deeper than
    /// `MAX_DEPTH`, uses a feature beyond `features`, is malformed, or the booster
    /// treats a finite value as missing.
    pub fn new(booster: &GradientBooster, features: usize) -> Option<Self> {
        if !booster.missing.is_nan() {
            return None;
        }
        let used = booster.prediction_iteration.unwrap_or(booster.trees.len()).min(booster.trees.len());
        let trees = booster.trees[..used].iter().map(CompleteTree::from_tree).collect::<Option<Vec<_>>>()?;
        if trees.iter().any(|t| t.features.iter().any(|&f| f as usize >= features)) {
            return None;
        }
        Some(Self { base_score: booster.base_score, trees, features })
    }

    /// Raw scores (log-odds under log loss) of row-major `rows`, added into `out`
    /// (which must hold one value per row and start at zero); None if a row holds
    /// a NaN (see the module docs) or `rows` is not whole rows.
    pub fn predict_into(&self, rows: &[f32], out: &mut [f64]) -> Option<()> {
        if self.features == 0 || !rows.len().is_multiple_of(self.features) || rows.len() / self.features != out.len() {
            return None;
        }
        if rows.iter().any(|v| v.is_nan()) {
            return None;
        }
        out.fill(self.base_score);
        // Tree-major, as forust sums: same order of additions, and one tree stays
        // in L1 while every row walks it.
        for tree in &self.trees {
            for (p, row) in out.iter_mut().zip(rows.chunks_exact(self.features)) {
                *p += f64::from(tree.leaf(row));
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use augur_simulators::rng::Rng;
    use forust_ml::objective::ObjectiveType;
    use forust_ml::Matrix;

    use super::super::gbdt::column_major;
    use super::*;

    const F: usize = 4;

    /// Rows with a learnable label and some exact ties on split values.
    fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let mut next = || rng.next_f64() as f32;
        let mut rows = Vec::with_capacity(n * F);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let r: Vec<f32> = vec![next(), (next() * 8.0).floor(), next() * 100.0, next()];
            y.push(f64::from(u8::from(r[0] + r[1] / 8.0 > 0.9 || r[2] < 10.0)));
            rows.extend(r);
        }
        (rows, y)
    }

    fn booster(depth: usize) -> GradientBooster {
        let (rows, y) = data(3_000, 7);
        let cols = column_major(&rows, F);
        let mut b = GradientBooster::default()
            .set_objective_type(ObjectiveType::LogLoss)
            .set_iterations(25)
            .set_max_depth(depth)
            .set_parallel(false);
        b.fit(&Matrix::new(&cols, y.len(), F), &y, &vec![1.0; y.len()], None).expect("fit");
        b
    }

    #[test]
    fn compiled_trees_score_exactly_as_forust_does() {
        for depth in [1, 3, 5, 7] {
            let b = booster(depth);
            let compiled = CompiledBooster::new(&b, F).expect("compiles");
            // Held-out rows plus the training rows (which sit exactly on cut points).
            for (rows, _) in [data(500, 99), data(3_000, 7)] {
                let cols = column_major(&rows, F);
                let want = b.predict(&Matrix::new(&cols, rows.len() / F, F), false);
                let mut got = vec![0.0; want.len()];
                compiled.predict_into(&rows, &mut got).expect("finite rows");
                assert_eq!(got, want, "depth {depth}");
            }
        }
    }

    #[test]
    fn a_saved_and_reloaded_booster_compiles_to_the_same_scores() {
        let b = booster(5);
        let reloaded = GradientBooster::from_json(&b.json_dump().expect("dump")).expect("load");
        let (rows, _) = data(300, 3);
        let (mut a, mut c) = (vec![0.0; 300], vec![0.0; 300]);
        CompiledBooster::new(&b, F).expect("compiles").predict_into(&rows, &mut a).expect("finite");
        CompiledBooster::new(&reloaded, F).expect("compiles").predict_into(&rows, &mut c).expect("finite");
        assert_eq!(a, c);
    }

    #[test]
    fn nan_rows_and_ragged_input_are_handed_back() {
        let compiled = CompiledBooster::new(&booster(3), F).expect("compiles");
        let mut out = vec![0.0; 2];
        let mut rows = vec![0.5f32; 2 * F];
        assert!(compiled.predict_into(&rows, &mut out).is_some());
        rows[5] = f32::NAN;
        assert!(compiled.predict_into(&rows, &mut out).is_none(), "NaN follows forust's missing branch");
        assert!(compiled.predict_into(&rows[..F + 1], &mut out).is_none(), "not whole rows");
        assert!(CompiledBooster::new(&booster(3), 1).is_none(), "a split on a feature the rows lack");
    }
}
