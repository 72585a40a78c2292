//! The simulator's test helpers (default-seed constants, tokens, HTTP helpers), shared with the simulator's own
//! tests through `creditlink_sim::testkit`.
pub use creditlink::sim::testkit::*;
