//! Precision and recall of a rule set on labelled rows ([`super::synth`]).
//!
//! The rules group rows: two rows are predicted to be one tradeline when a `merge` rule gives them the same
//! key, transitively, and a row with `previous_account_number` also joins the rows of its previous number
//! (the re-keying the feed applies). Quality is counted over *pairs* of rows: a predicted pair is correct
//! when both rows carry the same ground-truth tradeline. Precision = correct pairs / predicted pairs, recall =
//! correct pairs / true pairs. Counting goes through cluster sizes, so 100,000 rows take one pass.

use std::collections::HashMap;

use super::rules::{Action, RuleSet, Scope};
use super::synth::LabelledRow;

/// The outcome of one measurement.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measurement {
    pub rows: usize,
    pub true_pairs: u64,
    pub predicted_pairs: u64,
    pub correct_pairs: u64,
}

impl Measurement {
    /// 1.0 when nothing was predicted (no pair was wrongly merged).
    pub fn precision(&self) -> f64 {
        ratio(self.correct_pairs, self.predicted_pairs)
    }

    /// 1.0 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        ratio(self.correct_pairs, self.true_pairs)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Groups `rows` with the `merge` rules of `rules` and scores the grouping against the labels.
pub fn measure(rows: &[LabelledRow], rules: &RuleSet) -> Measurement {
    let mut sets = UnionFind::new(rows.len());
    let mut first_by_key: HashMap<(usize, String), usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let mut keys = rules.keys(&row.furnisher, &row.fields, Scope::Existing);
        if let Some(previous) = row.fields.get("previous_account_number") {
            let mut old = row.fields.clone();
            old.insert("account_number".to_owned(), previous.clone());
            keys.extend(rules.keys(&row.furnisher, &old, Scope::Existing));
        }
        for k in keys {
            if rules.rule(k.rule).action != Action::Merge {
                continue;
            }
            match first_by_key.entry((k.rule, k.key)) {
                std::collections::hash_map::Entry::Occupied(e) => sets.union(*e.get(), i),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                }
            }
        }
    }
    let mut predicted: HashMap<usize, u64> = HashMap::new();
    let mut truth: HashMap<u64, u64> = HashMap::new();
    let mut both: HashMap<(usize, u64), u64> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let root = sets.find(i);
        *predicted.entry(root).or_default() += 1;
        *truth.entry(row.tradeline).or_default() += 1;
        *both.entry((root, row.tradeline)).or_default() += 1;
    }
    let pairs = |n: &u64| n * n.saturating_sub(1) / 2;
    Measurement {
        rows: rows.len(),
        true_pairs: truth.values().map(pairs).sum(),
        predicted_pairs: predicted.values().map(pairs).sum(),
        correct_pairs: both.values().map(pairs).sum(),
    }
}

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[b] = a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::synth::{generate, rules_with_prefixes};

    /// The measurement on a small seeded sample meets the targets (the 100,000-row figure is in
    /// BENCHMARKS.md, from the ignored test below).
    #[test]
    fn rules_with_the_banks_prefixes_meet_the_targets_on_a_seeded_sample() {
        let rows = generate(7, 5_000);
        assert_eq!(rows.len(), 5_000);
        let m = measure(&rows, &rules_with_prefixes());
        assert!(
            m.true_pairs > 1_000,
            "the sample has duplicates to find: {m:?}"
        );
        assert!(m.precision() >= 0.995, "precision {m:?}");
        assert!(m.recall() >= 0.99, "recall {m:?}");
    }

    #[test]
    fn without_the_prefixes_recall_drops_and_a_rule_that_ignores_the_product_loses_precision() {
        let rows = generate(7, 5_000);
        let plain = measure(&rows, &RuleSet::default());
        assert!(plain.recall() < 0.97, "prefixed rows are missed: {plain:?}");
        let mut loose = crate::records::Rule::default_rule();
        loose.fields.remove(1);
        let loose = measure(
            &rows,
            &RuleSet::new(vec![loose], crate::records::synth::formats()),
        );
        assert!(loose.precision() < 0.99, "near-misses merged: {loose:?}");
    }

    #[test]
    fn the_generator_is_deterministic() {
        let a = generate(42, 300);
        let b = generate(42, 300);
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.fields == y.fields && x.tradeline == y.tradeline)
        );
        assert!(
            a.iter()
                .zip(generate(43, 300).iter())
                .any(|(x, y)| x.fields != y.fields)
        );
    }

    /// `cargo test --release --lib records::measure -- --ignored --nocapture`: the BENCHMARKS.md figure.
    #[test]
    #[ignore = "measurement for BENCHMARKS.md; run with --release"]
    fn measure_100k() {
        for seed in [1u64, 2, 3] {
            let started = std::time::Instant::now();
            let rows = generate(seed, 100_000);
            let with_prefixes = measure(&rows, &rules_with_prefixes());
            let plain = measure(&rows, &RuleSet::default());
            println!(
                "seed {seed}: rows {} true pairs {} | prefixes rule: predicted {} correct {} precision {:.5} recall {:.5} | default rule: precision {:.5} recall {:.5} | {:.1} s",
                with_prefixes.rows,
                with_prefixes.true_pairs,
                with_prefixes.predicted_pairs,
                with_prefixes.correct_pairs,
                with_prefixes.precision(),
                with_prefixes.recall(),
                plain.precision(),
                plain.recall(),
                started.elapsed().as_secs_f64()
            );
            assert!(with_prefixes.precision() >= 0.995 && with_prefixes.recall() >= 0.99);
        }
    }
}
