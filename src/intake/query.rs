//! Query strings of the bank and admin APIs. axum's `Query` extractor refuses a malformed query string
//! (`?limit=abc`, a repeated key, an unknown enum value) with a plain-text 400 before the handler runs, and
//! before the handler has checked the caller's token. Handlers take `Result<Query<T>, QueryRejection>`
//! instead, check the token first, and turn a rejection into a 400 problem document with [`query_of`].

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;

use super::ApiError;

/// The parsed query, or a 400 problem document saying what in the query string does not parse.
pub fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|rejection| {
        let text = rejection.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text);
        ApiError::InvalidRequest(format!("The query string is not valid: {detail}."))
    })
}
