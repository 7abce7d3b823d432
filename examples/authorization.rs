//! Authorization around the layer, combined: per-route scopes, a role predicate, a claims
//! check on the layer, a custom rejection body, and a cookie as a second token source;
//! then the other token sources (a custom header, the query string, a function).
//!
//! ```text
//! cargo run --example authorization
//! ```

mod common;

use axum::Router;
use axum::routing::{get, post};
use jwks_auth::testing::TestIssuer;
use jwks_auth::{AuthError, AuthErrorKind, StandardClaims};
use serde_json::json;

#[tokio::main]
async fn main() {
    let issuer = TestIssuer::start().await;

    let auth = issuer
        .layer()
        // Browsers send the session cookie; API clients the bearer header.
        .token_sources([
            jwks_auth::TokenSource::Bearer,
            jwks_auth::TokenSource::Cookie("session".into()),
        ])
        // Every token must belong to a verified user: 403 otherwise.
        .check(
            |claims: &StandardClaims| match claims.extra.get("email_verified") {
                Some(serde_json::Value::Bool(true)) => Ok(()),
                _ => Err(AuthErrorKind::AccessDenied.into()),
            },
        )
        // Our API's error format. The status, the RFC 6750 challenge, `Cache-Control`
        // and (on 503) `Retry-After` are kept from the default response; `as_str()` is
        // a stable code per kind.
        .on_rejection(|err: &AuthError| {
            axum::Json(json!({
                "error": err.kind().error_code(),
                "code": err.kind().as_str(),
                "message": err.to_string(),
            }))
        });

    let orders = Router::new()
        .route("/orders", post(|| async { "order created" }))
        // Route layers come from the layer, typed to its claims.
        .route_layer(auth.require_scopes(["orders:write"]));
    let admin = Router::new()
        .route("/admin", get(|| async { "admin area" }))
        .route_layer(auth.authorize(|c: &StandardClaims| {
            c.extra
                .get("roles")
                .and_then(|r| r.as_array())
                .is_some_and(|roles| roles.iter().any(|r| r == "admin"))
        }));
    let app = orders.merge(admin).layer(auth);

    let verified = |t: jwks_auth::testing::TokenBuilder<'_>| t.claim("email_verified", true).sign();
    let writer = verified(issuer.token().scope("orders:write"));
    let reader = verified(issuer.token().scope("orders:read"));
    let admin_user = verified(issuer.token().claim("roles", json!(["admin"])));
    let unverified = issuer.token().scope("orders:write").sign();
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    let post = |path: &str, headers: Vec<(&str, String)>| {
        let mut r = common::request(path, &headers);
        *r.method_mut() = axum::http::Method::POST;
        r
    };

    let results = vec![
        common::expect(
            &app,
            "POST /orders, scope orders:write",
            post("/orders", bearer(&writer)),
            200,
        )
        .await,
        common::expect(
            &app,
            "POST /orders, only orders:read",
            post("/orders", bearer(&reader)),
            403,
        )
        .await,
        common::expect(
            &app,
            "POST /orders, token in the session cookie",
            post("/orders", vec![("cookie", format!("session={writer}"))]),
            200,
        )
        .await,
        common::expect(
            &app,
            "POST /orders, email not verified",
            post("/orders", bearer(&unverified)),
            403,
        )
        .await,
        common::expect(
            &app,
            "GET /admin, role admin",
            common::request("/admin", &bearer(&admin_user)),
            200,
        )
        .await,
        common::expect(
            &app,
            "GET /admin, no role",
            common::request("/admin", &bearer(&writer)),
            403,
        )
        .await,
        common::expect(
            &app,
            "GET /admin, cookie and header disagree",
            common::request(
                "/admin",
                &[
                    ("authorization", format!("Bearer {admin_user}")),
                    ("cookie", format!("session={writer}")),
                ],
            ),
            400,
        )
        .await,
        common::expect(
            &app,
            "GET /admin, no token",
            common::request("/admin", &[]),
            401,
        )
        .await,
    ];

    // Other token sources, on a plain `/me` route.
    let me = |auth: jwks_auth::JwksAuth| {
        Router::new()
            .route("/me", get(|jwks_auth::Claims(c): jwks_auth::Claims| async move { c.sub.unwrap_or_default() }))
            .layer(auth)
    };
    let token = issuer.token().subject("source-demo").sign();
    let header_app = me(issuer
        .layer()
        .token_sources([jwks_auth::TokenSource::Header(
            axum::http::HeaderName::from_static("x-api-token"),
        )]));
    let query_app = me(issuer.layer().token_sources([
        jwks_auth::TokenSource::Bearer,
        jwks_auth::TokenSource::Query("access_token".into()),
    ]));
    let fn_app = me(issuer.layer().token_sources([
        jwks_auth::TokenSource::Bearer,
        jwks_auth::TokenSource::custom(|headers, _uri| {
            headers
                .get("x-forwarded-authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Token "))
                .map(str::to_owned)
        }),
    ]));
    let more = vec![
        common::expect(
            &header_app,
            "X-Api-Token header",
            common::request("/me", &[("x-api-token", token.clone())]),
            200,
        )
        .await,
        common::expect(
            &header_app,
            "bearer header turned off",
            common::request("/me", &bearer(&token)),
            401,
        )
        .await,
        common::expect(
            &query_app,
            "?access_token= (opted in)",
            common::request(&format!("/me?access_token={token}"), &[]),
            200,
        )
        .await,
        common::expect(
            &app,
            "?access_token= (not opted in)",
            common::request(&format!("/admin?access_token={token}"), &[]),
            401,
        )
        .await,
        common::expect(
            &fn_app,
            "a function of the headers",
            common::request(
                "/me",
                &[("x-forwarded-authorization", format!("Token {token}"))],
            ),
            200,
        )
        .await,
    ];
    // DPoP on chosen routes: `/payments` takes only DPoP-bound tokens with a proof, the
    // rest bearer tokens; one `JwksAuth`, one key set. The DPoP layer sits beside the
    // bearer layer (merged routers), never inside it: the outer layer would answer DPoP
    // requests first, as having no credentials.
    const BASE: &str = "https://api.example.com";
    let payments = Router::new()
        .route("/payments", axum::routing::post(|| async { "paid" }))
        .layer(
            issuer
                .layer()
                .dpop(jwks_auth::Dpop::required().base_url(BASE)),
        )
        .merge(
            Router::new()
                .route("/me", get(|| async { "me" }))
                .layer(issuer.layer()),
        );
    let client = jwks_auth::testing::DpopKey::generate(jwks_auth::Algorithm::ES256);
    let bound = issuer.token().bound_to(&client).sign();
    let proof = client.proof("POST", &format!("{BASE}/payments"), &bound);
    let dpop = vec![("authorization", format!("DPoP {bound}")), ("dpop", proof)];
    let plain = issuer.token().sign();
    let dpop_results = vec![
        common::expect(
            &payments,
            "POST /payments, DPoP token and proof",
            post("/payments", dpop),
            200,
        )
        .await,
        common::expect(
            &payments,
            "POST /payments, a bearer token",
            post("/payments", bearer(&plain)),
            401,
        )
        .await,
        common::expect(
            &payments,
            "GET /me, a bearer token",
            common::request("/me", &bearer(&plain)),
            200,
        )
        .await,
        common::expect(
            &payments,
            "GET /me, the bound token as a bearer token",
            common::request("/me", &bearer(&bound)),
            401,
        )
        .await,
    ];
    common::finish(&[results, more, dpop_results].concat());
}
