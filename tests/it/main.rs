//! The one integration-test binary. Each module is one area; `support` holds shared helpers.

mod cli_check_config;
mod config_load;
mod config_problems;
mod config_support;
