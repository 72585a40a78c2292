//! The one integration-test binary. Each module is one area; `support` holds shared helpers.
mod mapping_fixtures;
mod mapping_load;
mod sf_client_stub;
mod sim_collections;
mod sim_faults;
mod sim_oauth;
mod sim_rest;
mod sim_support;
