//! The routes both examples serve: `/public`, `/me`, `/admin`, `/health`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jwks_auth::{AuthError, Claims, JwksAuth};
use serde_json::json;

/// `/me` and `/admin` behind `auth`; `/public` and `/health` open.
pub(crate) fn routes(auth: JwksAuth) -> Router {
    let health_auth = auth.clone();
    Router::new()
        .route("/me", get(me))
        .route("/admin", get(admin))
        .layer(auth)
        .route("/public", get(|| async { "public: no token needed\n" }))
        .route("/health", get(move || health(health_auth.clone())))
}

/// The verified claims, as JSON.
async fn me(Claims(claims): Claims) -> Json<jwks_auth::StandardClaims> {
    Json(claims)
}

/// Needs the `admin` scope (in `scope` or `scp`): 403 `insufficient_scope` otherwise.
async fn admin(Claims(claims): Claims) -> Response {
    if claims.has_scope("admin") {
        format!("admin: welcome, {}\n", claims.sub.unwrap_or_default()).into_response()
    } else {
        AuthError::insufficient_scope(["admin"]).into_response()
    }
}

/// 200 once a fresh key set is loaded, 503 before (or when stale), with the details.
async fn health(auth: JwksAuth) -> Response {
    let status = auth.status();
    let code = if status.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": status.is_ready(),
        "kids": status.kids,
        "stale": status.stale,
        "fetches": status.fetches,
        "consecutive_failures": status.consecutive_failures,
        "last_error": status.last_error.map(|e| e.to_string()),
        "skipped_keys": status.skipped.len(),
    });
    (code, Json(body)).into_response()
}
