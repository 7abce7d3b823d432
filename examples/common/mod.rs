//! Shared by the examples: the routes of `demo` and `protected_api` (`/public`, `/me`,
//! `/admin`, `/health`), and small helpers for the in-process feature examples. Each
//! example uses part of it.
#![allow(dead_code)]

pub(crate) mod env;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jwks_auth::{AuthError, Claims, JwksAuth, Scopes, SharedClaims};
use serde_json::json;

/// `/me`, `/whoami` and `/admin` behind `auth`; `/public` and `/health` open.
pub(crate) fn routes(auth: JwksAuth) -> Router {
    let health_auth = auth.clone();
    // RFC 9728 metadata, when the layer has it (RESOURCE_URL): unauthenticated.
    let metadata = auth.resource_metadata_router();
    Router::new()
        .route("/me", get(me))
        .route("/whoami", get(whoami))
        .route("/admin", get(admin))
        .layer(auth)
        .route("/public", get(|| async { "public: no token needed\n" }))
        .route("/health", get(move || health(health_auth.clone())))
        .merge(metadata)
}

/// The verified claims, as JSON.
async fn me(Claims(claims): Claims) -> Json<jwks_auth::StandardClaims> {
    Json(claims)
}

/// The subject, as text (like `/public`, so that a load test measures the layer, not JSON).
/// `SharedClaims` shares the verified claims with the layer instead of copying them.
async fn whoami(claims: SharedClaims) -> String {
    claims.sub.clone().unwrap_or_default()
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

/// Sends `request` to `app` in-process, prints what came back, and says whether the
/// status was the expected one.
pub(crate) async fn expect(
    app: &Router,
    label: &str,
    request: axum::http::Request<axum::body::Body>,
    expected: u16,
) -> bool {
    use tower::ServiceExt;
    let response = match app.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mark = if status == expected {
        "ok"
    } else {
        "UNEXPECTED"
    };
    println!("{label:<44} {status} {mark:<10} {challenge}");
    if challenge == "-" && !body.is_empty() {
        println!("{:<44} body: {}", "", body.trim());
    }
    status == expected
}

/// `GET path`, with these headers.
pub(crate) fn request(
    path: &str,
    headers: &[(&str, String)],
) -> axum::http::Request<axum::body::Body> {
    let mut request = axum::http::Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, value.as_str());
    }
    request
        .body(axum::body::Body::empty())
        .unwrap_or_else(|_| axum::http::Request::new(axum::body::Body::empty()))
}

/// Exits non-zero if any check failed.
pub(crate) fn finish(results: &[bool]) {
    let failed = results.iter().filter(|ok| !**ok).count();
    if failed > 0 {
        eprintln!("{failed} request(s) did not get the expected status");
        std::process::exit(1);
    }
    println!("all as expected");
}
