//! The one integration-test binary. Each module is one area; `support` holds shared helpers.
mod mapping_fixtures;
mod mapping_load;
mod outbox_crash;
mod outbox_idempotency;
mod outbox_state_machine;
mod outbox_support;
mod relay_duplicate;
mod relay_faults;
mod relay_pusher;
mod relay_support;
mod sf_client_stub;
mod sim_collections;
mod sim_faults;
mod sim_oauth;
mod sim_rest;
mod sim_support;
mod store_group_commit;
