//! See ARCHITECTURE.md.
pub mod soql;
