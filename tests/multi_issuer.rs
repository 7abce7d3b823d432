//! One layer trusting several issuers, each with its own key set and refresh task.

mod common;

use axum::http::StatusCode;
use common::*;
use jwks_auth::testing::{AUDIENCE, TestIssuer};
use jwks_auth::{Algorithm, AuthErrorKind as K, ConfigErrorKind, JwksAuth};

#[tokio::test]
async fn each_token_is_verified_by_its_own_issuers_keys() {
    let a = TestIssuer::start().await;
    let b = TestIssuer::start().await;
    let auth = JwksAuth::multi_issuer([
        jwks_auth::TrustedIssuer::new(a.issuer(), a.jwks_url()),
        jwks_auth::TrustedIssuer::discovered(b.issuer()),
    ])
    .audience(AUDIENCE)
    // This test is about issuer binding, not flood control.
    // Zero is raised to the 1 s floor (`limits::MIN_COOLDOWN`).
    .refresh(jwks_auth::Refresh::default().cooldown(std::time::Duration::ZERO));
    let (app, hits) = app(auth.clone());

    assert_eq!(
        send(&app, &a.token().subject("from-a").sign()).await.body,
        "from-a"
    );
    assert_eq!(
        send(
            &app,
            &b.token().alg(Algorithm::ES256).subject("from-b").sign()
        )
        .await
        .body,
        "from-b"
    );
    assert_eq!(
        (a.fetch_count(), b.fetch_count(), b.discovery_count()),
        (1, 1, 1)
    );

    // A token claiming issuer B, signed with A's key. Both issuers name their RSA key
    // `rsa-1`: only B's `rsa-1` is tried, and it does not verify A's signature.
    assert_eq!(a.key(Algorithm::RS256).kid(), b.key(Algorithm::RS256).kid());
    let forged = a.token().claim("iss", b.issuer()).sign();
    assert_invalid_token(
        &send(&app, &forged).await,
        K::InvalidSignature.description(),
    );
    // With a kid only A has, B's set is refreshed once (unknown kid), never A's.
    let a_only = std::sync::Arc::new(jwks_auth::testing::TestKey::generate(
        Algorithm::ES256,
        "a-only",
    ));
    a.add_key(a_only.clone());
    let forged = a
        .token()
        .alg(Algorithm::ES256)
        .key(a_only)
        .claim("iss", b.issuer())
        .sign();
    assert_invalid_token(&send(&app, &forged).await, K::UnknownKey.description());
    assert_eq!(
        (a.fetch_count(), b.fetch_count()),
        (1, 2),
        "only B's key set was refreshed"
    );

    // An issuer nobody trusts: rejected before any fetch.
    let stranger = TestIssuer::start().await;
    let before = (a.fetch_count(), b.fetch_count());
    assert_invalid_token(
        &send(&app, &stranger.token().sign()).await,
        K::InvalidIssuer.description(),
    );
    assert_invalid_token(
        &send(&app, &a.token().without_claim("iss").sign()).await,
        K::InvalidIssuer.description(),
    );
    assert_eq!(
        (a.fetch_count(), b.fetch_count(), stranger.fetch_count()),
        (before.0, before.1, 0)
    );
    assert_eq!(hits.get(), 2);

    // Rotation at one issuer is picked up for that issuer only (once the 1 s cooldown
    // floor since B's last forced refresh has passed).
    tokio::time::sleep(jwks_auth::limits::MIN_COOLDOWN).await;
    b.rotate().await;
    assert_eq!(send(&app, &b.token().sign()).await.status, StatusCode::OK);
    assert_eq!((a.fetch_count(), b.fetch_count()), (1, 3));

    let status_a = auth.status().issuer(a.issuer()).cloned().unwrap();
    assert_eq!(status_a.kids, ["ed25519-1", "p256-1", "p384-1", "rsa-1"]);
    assert_eq!(auth.status().key_count, 8);
    assert!(auth.status().is_ready());
    assert!(
        auth.status()
            .issuer("https://nobody.example")
            .cloned()
            .is_none()
    );
}

#[tokio::test]
async fn one_issuer_down_does_not_affect_the_other() {
    let a = TestIssuer::start().await;
    let b = TestIssuer::start().await;
    b.set_behavior(jwks_auth::testing::JwksBehavior::Status(500));
    let auth = JwksAuth::multi_issuer([
        jwks_auth::TrustedIssuer::new(a.issuer(), a.jwks_url()),
        jwks_auth::TrustedIssuer::new(b.issuer(), b.jwks_url()),
    ])
    .audience(AUDIENCE);
    let (app, _) = app(auth.clone());
    assert_eq!(send(&app, &a.token().sign()).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, &b.token().sign()).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(
        auth.status()
            .issuer(a.issuer())
            .cloned()
            .unwrap()
            .is_ready()
    );
    assert!(
        !auth.status().is_ready(),
        "the combined status reports the outage"
    );
}

#[tokio::test]
async fn misconfigured_multi_issuer_layers_say_so() {
    let err = JwksAuth::multi_issuer([]).ready().await.unwrap_err();
    assert_eq!(
        err.config_error().map(|e| e.kind().clone()),
        Some(ConfigErrorKind::NoIssuers)
    );
    // Applying it stops the service at start-up, naming the fix; a key source beside
    // the trusted issuers can no longer be written at all.
    let Err(panic) = std::panic::catch_unwind(|| app(JwksAuth::multi_issuer([]))) else {
        panic!("a multi-issuer layer without issuers was applied");
    };
    let message = *panic.downcast::<String>().unwrap();
    assert!(message.contains("multi_issuer([..])"), "{message}");
}
