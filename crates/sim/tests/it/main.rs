//! The simulator's integration tests: each module drives a running simulated org over HTTP, the way a client
//! does. Tests of creditlink's own Salesforce client against the simulator live in the root crate's `tests/it`.
mod answers;
mod automation;
mod automation_support;
mod bulk;
mod collections;
mod faults;
mod indexes;
mod oauth;
mod query;
mod rest;
