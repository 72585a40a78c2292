//! The one integration-test binary. Each module is one area; `support` holds shared helpers.
mod sim_support;
mod sim_oauth;
mod sim_rest;
mod sim_collections;
mod sim_faults;
