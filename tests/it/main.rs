//! The one integration-test binary. Each module is one area; `support` holds shared helpers.

mod mapping_fixtures;
mod mapping_load;
