//! The one integration-test binary. Each module is one area; `support` holds shared helpers.

mod intake_edge_body;
mod intake_edge_headers;
mod intake_edge_openapi;
mod intake_edge_problem;
mod intake_edge_support;
mod intake_edge_xml;
