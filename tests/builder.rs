//! How a layer is built and what it shares: setters that do no work, builder-order
//! mistakes that are errors rather than silently dropped checks, one key set for the
//! layers derived from one `JwksAuth`, and one renderer for every rejection.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use jwks_auth::testing::TestIssuer;
use jwks_auth::{
    AuthError, AuthErrorKind, Claims, ConfigErrorKind, JwksAuth, Scopes, SkipReason, StandardClaims,
};
use serde::Deserialize;
use serde_json::json;

#[test]
fn setters_do_no_work_a_static_set_is_parsed_and_warned_about_once() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let warnings = || logs.count(tracing::Level::WARN, "skipping JWK");

    let doc = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "kid": "good",
         "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "oct", "kid": "bad", "k": "c2VjcmV0"},
    ]});
    let auth = JwksAuth::from_jwks(doc)
        .issuer("https://idp.example/")
        .audience("api")
        .leeway(Duration::from_secs(5))
        .realm("api")
        .cache(16)
        .max_token_len(8192);
    assert_eq!(warnings(), 0, "no setter parsed the set");

    let status = auth.status();
    assert_eq!(status.kids, ["good"]);
    assert_eq!(status.skipped.len(), 1);
    assert_eq!(status.skipped[0].reason, SkipReason::Symmetric);
    // Derived layers that only change request options share the parsed set.
    let optional = auth.clone().optional().audience("other");
    assert_eq!(optional.status().kids, ["good"]);
    let _ = auth.status();
    assert_eq!(warnings(), 1, "parsed and warned once");
}

#[derive(Clone, Deserialize)]
struct MyClaims {
    sub: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    roles: Vec<String>,
}

impl jwks_auth::Scopes for MyClaims {
    fn scope_claim(&self) -> Option<&str> {
        Some(&self.scope)
    }
}

#[tokio::test]
async fn typed_route_layers_work_for_a_custom_claims_type() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().claims::<MyClaims>();
    let app: Router = Router::new()
        .route(
            "/orders",
            get(|Claims(c): Claims<MyClaims>| async move { c.sub.clone() }),
        )
        .route_layer(auth.require_scopes(["orders:write"]))
        .merge(
            Router::new()
                .route("/admin", get(|| async { "admin" }))
                .route_layer(auth.authorize(|c: &MyClaims| c.roles.iter().any(|r| r == "admin"))),
        )
        .layer(auth);
    let with_scope = issuer.token().scope("orders:write").sign();
    let without = issuer.token().scope("orders:read").sign();
    let admin = issuer.token().claim("roles", json!(["admin"])).sign();
    let reply = send_request(&app, get_with("/orders", Some(&with_scope))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "user-1")
    );
    let reply = send_request(&app, get_with("/orders", Some(&without))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .challenge()
            .unwrap()
            .contains(r#"scope="orders:write""#)
    );
    assert_eq!(
        send_request(&app, get_with("/admin", Some(&admin)))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send_request(&app, get_with("/admin", Some(&without)))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn claims_after_check_is_an_error_never_a_dropped_check() {
    let issuer = TestIssuer::start().await;
    let wrong_order = issuer
        .layer()
        .check(|_: &StandardClaims| Err(AuthErrorKind::AccessDenied.into()))
        .claims::<MyClaims>();
    let err = wrong_order.ready().await.unwrap_err();
    assert_eq!(
        err.config_error().map(|e| e.kind()),
        Some(&ConfigErrorKind::CheckBeforeClaims)
    );
    // Applying it stops the service at start-up, naming the mistake and the fix.
    let message = panic_of_applying(wrong_order);
    assert!(
        message.contains("claims::<T>() after check()")
            && message.contains("choose the claims type first"),
        "{message}"
    );

    // The right order keeps the check, typed over the claims type.
    let right_order = issuer.layer().claims::<MyClaims>().check(|c: &MyClaims| {
        if c.scope.split(' ').any(|s| s == "orders") {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope(["orders"]))
        }
    });
    right_order.ready().await.unwrap();
    let app: Router = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims<MyClaims>| async move { c.sub }),
        )
        .layer(right_order);
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::FORBIDDEN
    );
    let reply = send(&app, &issuer.token().scope("orders").sign()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "user-1")
    );
}

#[tokio::test]
async fn issuer_on_a_multi_issuer_layer_is_an_error_not_overwritten() {
    let issuer = TestIssuer::start().await;
    let auth = JwksAuth::multi_issuer([jwks_auth::TrustedIssuer::new(
        issuer.issuer(),
        issuer.jwks_url(),
    )])
    .issuer("https://other.example/");
    let err = auth.ready().await.unwrap_err();
    assert_eq!(
        err.config_error().map(|e| e.kind()),
        Some(&ConfigErrorKind::IssuerOnMultiIssuer)
    );
    assert_eq!(issuer.fetch_count(), 0);
}

#[tokio::test]
async fn a_required_and_an_optional_layer_share_one_key_set_and_task() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    let app: Router = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(auth.clone())
        .merge(
            Router::new()
                .route(
                    "/maybe",
                    get(|c: Option<Claims>| async move { format!("{}", c.is_some()) }),
                )
                .layer(auth.clone().optional()),
        );
    auth.ready().await.unwrap();
    auth.clone().optional().ready().await.unwrap();
    let token = issuer.token().sign();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    let anonymous = send_request(&app, Request::get("/maybe").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (anonymous.status, anonymous.body.as_str()),
        (StatusCode::OK, "false")
    );
    assert_eq!(issuer.fetch_count(), 1, "one fetch for both layers");
    // One task: a forced refresh through either layer is seen by the other.
    auth.clone().optional().refresh_now().await.unwrap();
    assert_eq!(issuer.fetch_count(), 2);
    assert_eq!(auth.status().fetches, 2);

    // A different transport is a different key source: its own fetch.
    let other = auth
        .clone()
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(3)));
    other.ready().await.unwrap();
    assert_eq!(issuer.fetch_count(), 3);
}

fn get_with(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_rejection_carries_the_realm_and_goes_through_the_hook() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().realm("orders");
    let app: Router = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(auth.require_scopes(["admin"]))
        .route(
            "/delete",
            get(|Claims(c): Claims| async move {
                c.require_scopes(["orders:delete"])?;
                Ok::<_, AuthError>("deleted")
            }),
        )
        .layer(auth.clone());
    let token = issuer.token().sign();
    let expected = r#"Bearer realm="orders", error="insufficient_scope", error_description="the token lacks a required scope", scope="admin""#;
    let route_layer = send_request(&app, get_with("/admin", Some(&token))).await;
    assert_eq!(route_layer.status, StatusCode::FORBIDDEN);
    assert_eq!(route_layer.challenge(), Some(expected));
    let handler = send_request(&app, get_with("/delete", Some(&token))).await;
    assert_eq!(handler.status, StatusCode::FORBIDDEN);
    assert_eq!(
        handler.challenge(),
        Some(expected.replace("\"admin\"", "\"orders:delete\"").as_str())
    );

    // With a hook, the route layers' 401s and 403s and the handler's 403 use it too,
    // and a replaced body keeps the challenge.
    let hooked = auth
        .clone()
        .optional()
        .on_rejection(|err: &AuthError| axum::Json(json!({"code": err.kind().as_str()})));
    let app: Router = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(hooked.require_scopes(["admin"]))
        .layer(hooked);
    let forbidden = send_request(&app, get_with("/admin", Some(&token))).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(forbidden.json(), json!({"code": "insufficient_scope"}));
    assert_eq!(forbidden.challenge(), Some(expected));
    let anonymous = send_request(&app, get_with("/admin", None)).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.json(), json!({"code": "missing_credentials"}));
    assert_eq!(anonymous.challenge(), Some(r#"Bearer realm="orders""#));
}

#[tokio::test]
async fn a_replaced_body_keeps_retry_after_on_503() {
    // A token from a real issuer, but a layer whose key set URL answers nothing: 503.
    let issuer = TestIssuer::start().await;
    let auth = JwksAuth::new("http://127.0.0.1:9/jwks.json")
        .issuer(issuer.issuer())
        .audience(jwks_auth::testing::AUDIENCE)
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_millis(300)))
        .on_rejection(|_: &AuthError| "custom");
    let (app, hits) = app(auth);
    let reply = send(&app, &issuer.token().sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, "custom");
    assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert_eq!(hits.get(), 0);
}

#[tokio::test]
async fn a_route_layer_for_another_claims_type_is_a_500_naming_both() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let app: Router = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(issuer.layer().require_scopes(["admin"]))
        .layer(issuer.layer().claims::<MyClaims>());
    let token = issuer.token().scope("admin").sign();
    let reply = send_request(&app, get_with("/admin", Some(&token))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.body.contains("MyClaims"),
        "the type stays in the log"
    );
    assert_eq!(logs.count(tracing::Level::ERROR, "MyClaims"), 1);
    assert_eq!(logs.count(tracing::Level::ERROR, "StandardClaims"), 1);
}
