//! Fuzzing on the stable toolchain: proptest-driven harnesses over everything that parses hostile input.
//!
//! cargo-fuzz needs nightly, which this project does not use, so the harnesses are property tests: each one
//! feeds a parser (1) every seed of its corpus under `tests/fuzz/corpus/<target>/`, (2) random mutations of
//! those seeds (bytes flipped, inserted, deleted, spliced) and (3) inputs generated from a small grammar, and
//! asserts that it never panics and that every refusal is an ordinary error. A found panic is a bug to fix,
//! and the input that found it belongs in the corpus.
//!
//! Harnesses: bank request bodies (JSON and XML, `intake`), the Outbound Message envelope (`soap`), the mapping
//! engine with the shipped mappings (`mapping`), and the simulator's SOQL subset (`soql`, with the `sim` feature).
//!
//! - Bounded run (CI, `cargo test`): `FUZZ_CASES` cases per harness, 64 by default (seconds).
//! - Long run: `FUZZ_CASES=200000 cargo test --release --test fuzz -- --nocapture`.
//! - Failures proptest shrinks are kept in `tests/fuzz/regressions/*.txt` and replayed first on every run:
//!   commit them with the fix.

mod intake;
mod mapping;
mod soap;
/// The simulator's SOQL parser exists only in builds with the simulator.
#[cfg(feature = "sim")]
mod soql;
mod support;
