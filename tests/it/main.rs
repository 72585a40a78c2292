//! The one integration-test binary. Each module is one area; `support` holds shared helpers.

mod vault_rotate;
mod vault_store;
mod webhook_sender;
mod webhook_signing;
mod webhook_ssrf;
