//! creditlink: a daemon between a credit bureau's Salesforce org and its member banks.
//!
//! Read `ARCHITECTURE.md` first: it maps these modules and states the invariants they keep.

pub mod app;
pub mod bank;
pub mod cli;
pub mod config;
pub mod feeds;
pub mod inbound;
pub mod intake;
pub mod lifecycle;
pub mod mapping;
pub mod notify;
pub mod ops;
pub mod outbox;
pub mod records;
pub mod relay;
pub mod salesforce;
#[cfg(feature = "sim")]
pub mod sandbox;
/// The simulated Salesforce org (crate `creditlink-sim`), compiled in only with the `sim` feature.
#[cfg(feature = "sim")]
pub use creditlink_sim as sim;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod vault;
