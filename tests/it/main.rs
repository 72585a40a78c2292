//! The one integration-test binary. Each module is one area; `support` holds shared helpers.

mod outbox_crash;
mod outbox_idempotency;
mod outbox_state_machine;
mod outbox_support;
mod store_group_commit;
