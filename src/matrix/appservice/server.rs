//! The appservice HTTP listener: what the homeserver calls.
//!
//! - `PUT /_matrix/app/v1/transactions/{txnId}` (and the legacy
//!   `/transactions/{txnId}`): stored, then 200 (see `txn_queue.rs`).
//! - `GET /_matrix/app/v1/users/{userId}`: a ghost id is registered on
//!   demand (200); anything else 404.
//! - `GET /_matrix/app/v1/rooms/{roomAlias}`: 404 (group rooms are created
//!   with their alias, so the homeserver never needs to ask).
//! - `POST /_matrix/app/v1/ping`: 200.
//!
//! Every one of them needs the hs_token (`Authorization: Bearer`, or the
//! legacy `access_token` query parameter): none is 401 `M_UNAUTHORIZED`, a
//! wrong one 403 `M_FORBIDDEN`. Bodies are capped
//! (`matrix.appservice.max_transaction_bytes`) and JSON nesting is bounded
//! by serde_json's recursion limit (128 levels): deeper is 400. The only
//! route without the token is the media link for QQ users
//! (`/_qqbridge/media/{id}/{name}`, see `media.rs`), which serves only
//! files the bridge itself linked, by unguessable id.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use super::super::Matrix;
use crate::matrix_txn::{parse_transaction, TransactionBody};

type Shared = State<Arc<Matrix>>;

/// Serves until the task is aborted.
pub async fn serve(matrix: Arc<Matrix>, listener: TcpListener) {
    let limit = matrix.settings.max_transaction_bytes;
    let app = Router::new()
        .route("/_matrix/app/v1/transactions/{txn_id}", put(transaction))
        .route("/transactions/{txn_id}", put(transaction))
        .route("/_matrix/app/v1/users/{user_id}", get(query_user))
        .route("/users/{user_id}", get(query_user))
        .route("/_matrix/app/v1/rooms/{alias}", get(query_alias))
        .route("/rooms/{alias}", get(query_alias))
        .route("/_matrix/app/v1/ping", post(ping))
        .route("/_qqbridge/media/{id}/{name}", get(media))
        .fallback(unknown)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(matrix);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "the appservice listener stopped");
    }
}

fn matrix_error(status: StatusCode, errcode: &str, message: &str) -> Response {
    (
        status,
        Json(json!({ "errcode": errcode, "error": message })),
    )
        .into_response()
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The hs_token check every homeserver request passes first: the refusal
/// to answer with, if any.
fn refusal(matrix: &Matrix, headers: &HeaderMap, query: Option<&str>) -> Option<Response> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let from_query = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "access_token")
            .map(|(_, v)| v)
    });
    let Some(given) = from_header.or(from_query) else {
        return Some(matrix_error(
            StatusCode::UNAUTHORIZED,
            "M_UNAUTHORIZED",
            "missing the hs_token",
        ));
    };
    let given = percent_encoding::percent_decode_str(given).collect::<Vec<u8>>();
    if same_secret(&given, matrix.hs_token.expose().as_bytes()) {
        None
    } else {
        tracing::warn!("a request with a wrong hs_token was refused");
        Some(matrix_error(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "wrong hs_token",
        ))
    }
}

async fn transaction(
    State(matrix): Shared,
    Path(txn_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&matrix, &headers, query.as_deref()) {
        return refused;
    }
    if txn_id.is_empty() || txn_id.len() > 255 {
        return matrix_error(
            StatusCode::BAD_REQUEST,
            "M_INVALID_PARAM",
            "bad transaction id",
        );
    }
    let parsed: TransactionBody = match parse_transaction(&body) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable appservice transaction");
            return matrix_error(
                StatusCode::BAD_REQUEST,
                "M_NOT_JSON",
                "unreadable transaction body",
            );
        }
    };
    let count = parsed.events.len();
    match matrix.accept_transaction(&txn_id, parsed).await {
        Ok(new) => {
            tracing::debug!(txn = %txn_id, events = count, new, "appservice transaction");
            (StatusCode::OK, Json(json!({}))).into_response()
        }
        Err(e) => {
            // No 200: the homeserver keeps the transaction and retries.
            tracing::error!(txn = %txn_id, error = %e, "cannot store an appservice transaction");
            matrix_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "cannot store the transaction now",
            )
        }
    }
}

async fn query_user(
    State(matrix): Shared,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&matrix, &headers, query.as_deref()) {
        return refused;
    }
    let Some(uin) = matrix.ids.ghost_uin(&user_id) else {
        return matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "not a QQ user");
    };
    match matrix.ensure_ghost(uin, None).await {
        Ok(_) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(e) => {
            tracing::warn!(%uin, error = %e, "cannot register a ghost on demand");
            matrix_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "cannot create the user now",
            )
        }
    }
}

async fn query_alias(
    State(matrix): Shared,
    Path(_alias): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refusal(&matrix, &headers, query.as_deref()) {
        return refused;
    }
    matrix_error(
        StatusCode::NOT_FOUND,
        "M_NOT_FOUND",
        "group rooms are created when the group is first used",
    )
}

async fn ping(State(matrix): Shared, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&matrix, &headers, query.as_deref()) {
        return refused;
    }
    (StatusCode::OK, Json(json!({}))).into_response()
}

async fn media(State(matrix): Shared, Path((id, _name)): Path<(String, String)>) -> Response {
    matrix.serve_media(&id).await
}

async fn unknown() -> Response {
    matrix_error(StatusCode::NOT_FOUND, "M_UNRECOGNIZED", "unknown endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
    }
}
