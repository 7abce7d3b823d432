//! OIDC discovery (`JwksAuth::from_issuer`) against a real loopback provider.

mod common;

use axum::http::StatusCode;
use common::*;
use jwks_auth::testing::{AUDIENCE, JwksBehavior, TestIssuer};
use jwks_auth::{AuthErrorKind as K, JwksAuth, RefreshErrorKind};
use serde_json::json;

#[tokio::test]
async fn from_issuer_discovers_the_key_set_and_enforces_iss() {
    let issuer = TestIssuer::start().await;
    let auth = JwksAuth::from_issuer(issuer.issuer()).audience(AUDIENCE);
    let (app, _) = app(auth.clone());
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::OK
    );
    assert_eq!((issuer.discovery_count(), issuer.fetch_count()), (1, 1));

    // `iss` is enforced even though the builder was not told about it twice.
    let other = issuer.token().claim("iss", "https://other.example").sign();
    assert_invalid_token(&send(&app, &other).await, K::InvalidIssuer.description());
    let slash = issuer
        .token()
        .claim("iss", format!("{}/", issuer.issuer()))
        .sign();
    assert_invalid_token(&send(&app, &slash).await, K::InvalidIssuer.description());

    // Rotation: a refresh reuses the discovered URL.
    issuer.rotate().await;
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::OK
    );
    assert_eq!((issuer.discovery_count(), issuer.fetch_count()), (1, 2));
}

#[tokio::test]
async fn rfc_8414_is_the_fallback() {
    let issuer = TestIssuer::start().await;
    issuer.disable_oidc_discovery(true);
    let auth = JwksAuth::from_issuer(issuer.issuer()).audience(AUDIENCE);
    auth.ready_within(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        issuer.discovery_count(),
        2,
        "OIDC path (404), then RFC 8414's"
    );
    assert_eq!(auth.status().key_count, 4);
}

#[tokio::test]
async fn a_document_for_another_issuer_is_refused_and_retried() {
    let issuer = TestIssuer::start().await;
    issuer.set_discovery_document(Some(json!({
        "issuer": "https://evil.example",
        "jwks_uri": issuer.jwks_url(),
    })));
    let auth = JwksAuth::from_issuer(issuer.issuer()).audience(AUDIENCE);
    let (app, hits) = app(auth.clone());
    let reply = send(&app, &issuer.token().sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(hits.get(), 0);
    assert_eq!(
        issuer.fetch_count(),
        0,
        "the key set named by a bad document is never fetched"
    );
    let status = auth.status();
    assert_eq!(
        status.last_error.map(|e| e.kind().clone()),
        Some(RefreshErrorKind::IssuerMismatch {
            configured: issuer.issuer().to_owned(),
            discovered: "https://evil.example".to_owned(),
        })
    );
    // A mismatch cannot be fixed by retrying: `ready()` says so at once, naming both.
    let started = std::time::Instant::now();
    let err = auth.ready().await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert!(!err.is_timeout());
    let text = err.to_string();
    assert!(
        text.contains("https://evil.example") && text.contains(issuer.issuer()),
        "{text}"
    );

    // A jwks_uri that breaks the transport policy is refused too.
    issuer.set_discovery_document(Some(json!({
        "issuer": issuer.issuer(),
        "jwks_uri": "http://keys.example/jwks.json",
    })));
    let err = auth.refresh_now().await.unwrap_err();
    assert_eq!(err.kind(), &RefreshErrorKind::InvalidDiscovery);

    // Fixed: the next refresh discovers and loads keys.
    issuer.set_discovery_document(None);
    auth.refresh_now().await.unwrap();
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_trailing_slash_mismatch_is_named_and_ready_fails_fast() {
    let issuer = TestIssuer::start().await;
    let configured = format!("{}/", issuer.issuer());
    let auth = JwksAuth::from_issuer(configured.clone()).audience(AUDIENCE);
    let started = std::time::Instant::now();
    let err = auth.ready().await.unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    let text = err.to_string();
    assert!(text.contains(&configured), "{text}");
    assert!(text.contains("trailing slash"), "{text}");
}

#[tokio::test]
async fn discovery_runs_again_after_the_key_set_fails() {
    let issuer = TestIssuer::start().await;
    let auth = JwksAuth::from_issuer(issuer.issuer()).audience(AUDIENCE);
    auth.ready().await.unwrap();
    issuer.set_behavior(JwksBehavior::Status(404));
    assert!(auth.refresh_now().await.is_err());
    issuer.set_behavior(JwksBehavior::Normal);
    auth.refresh_now().await.unwrap();
    assert_eq!(issuer.discovery_count(), 2);
}
