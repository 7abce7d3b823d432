//! The verified-token cache: only the very same token hits, and never past its validity
//! or its key's presence in the key set.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::*;
use jwks_auth::testing::{TestIssuer, TestKey};
use jwks_auth::{Algorithm, AuthErrorKind as K};

/// Changes one character of the payload segment, keeping the length, so the token falls
/// in the same cache slot as the original (the slot hash reads the tail and the length).
fn same_slot_variant(token: &str) -> String {
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    assert!(
        signature.len() >= 64,
        "the hashed tail lies inside the signature"
    );
    let mut p: Vec<u8> = payload.as_bytes().to_vec();
    // Flip a character in the middle, staying inside the base64url alphabet.
    let i = p.len() / 2;
    p[i] = if p[i] == b'A' { b'B' } else { b'A' };
    format!("{header}.{}.{signature}", String::from_utf8(p).unwrap())
}

#[tokio::test]
async fn only_the_same_token_hits() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer().cache(64));
    let token = issuer.token().sign();
    for _ in 0..3 {
        assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    }
    // Same slot, different bytes: verified in full, and rejected.
    let collided = same_slot_variant(&token);
    let reply = send(&app, &collided).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(matches!(
        reply.json()["error_description"].as_str(),
        Some(d) if d == K::InvalidSignature.description() || d == K::Malformed.description()
    ));
    // A changed signature, or a re-encoded payload, is never a hit either.
    let mut sig_changed = token.clone();
    let last = sig_changed.pop().unwrap();
    sig_changed.push(if last == 'A' { 'B' } else { 'A' });
    let reply = send(&app, &sig_changed).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(hits.get(), 3);
    // The original still hits afterwards.
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_removed_keys_tokens_stop_at_the_refresh_that_removes_it() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().cache(64);
    let (app, _) = app(auth.clone());
    let extra = Arc::new(TestKey::generate(Algorithm::ES256, "extra"));
    issuer.add_key(extra.clone());
    let token = issuer
        .token()
        .alg(Algorithm::ES256)
        .key(extra.clone())
        .sign();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    assert_eq!(send(&app, &token).await.status, StatusCode::OK, "cached");

    // Unrelated refreshes (same key set) keep the entry valid.
    auth.refresh_now().await.unwrap();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);

    // The refresh that removes the key ends the token's acceptance.
    let keep: Vec<_> = [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .map(|a| issuer.key(a))
    .filter(|k| k.kid() != "extra")
    .collect();
    issuer.publish(keep);
    auth.refresh_now().await.unwrap();
    assert!(!auth.status().kids.contains(&"extra".to_owned()));
    assert_invalid_token(&send(&app, &token).await, K::UnknownKey.description());
}

#[tokio::test]
async fn expiry_is_checked_at_every_hit() {
    let issuer = TestIssuer::start().await;
    let (app, _) = app(issuer.layer().leeway(Duration::ZERO).cache(64));
    let token = issuer.token().expires_in(1).sign();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_invalid_token(&send(&app, &token).await, K::Expired.description());
}

#[tokio::test]
async fn cached_claims_are_the_verified_claims() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().cache(8);
    let token = issuer
        .token()
        .subject("dana")
        .claim("tenant", "acme")
        .sign();
    let cold = auth.verify(&token).await.unwrap();
    let warm = auth.verify(&token).await.unwrap();
    assert_eq!(cold, warm);
    assert_eq!(warm.sub.as_deref(), Some("dana"));
    assert_eq!(warm.extra["tenant"], "acme");
    // A bound of zero disables the cache rather than panicking.
    let none = issuer.layer().cache(0);
    assert!(none.verify(&token).await.is_ok());
}

#[tokio::test]
async fn the_cache_is_on_by_default_and_a_flood_of_distinct_tokens_stays_bounded() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().cache(64);
    let (flood_app, hits) = app(auth.clone());
    let token = issuer.token().alg(Algorithm::EdDSA).sign();
    // Default layer: the cache is on.
    let default = issuer.layer();
    let (default_app, _) = app(default.clone());
    assert_eq!(send(&default_app, &token).await.status, StatusCode::OK);
    assert_eq!(default.status().cache_entries, 1);
    let off = issuer.layer().cache(0);
    let (off_app, _) = app(off.clone());
    assert_eq!(send(&off_app, &token).await.status, StatusCode::OK);
    let status = off.status();
    assert_eq!((status.cache_entries, status.cache_bytes), (0, 0));

    for i in 0..1_000 {
        let t = issuer
            .token()
            .alg(Algorithm::EdDSA)
            .subject(&format!("user-{i}"))
            .sign();
        assert_eq!(send(&flood_app, &t).await.status, StatusCode::OK);
    }
    assert_eq!(hits.get(), 1_000);
    let status = auth.status();
    let (entries, bytes) = (status.cache_entries, status.cache_bytes);
    assert!(entries <= 64, "{entries} entries");
    assert!(entries >= 16, "the cache is used: {entries}");
    assert!(bytes <= 64 * (token.len() + 256), "{bytes} bytes");
    eprintln!("cache after a flood of 1,000 distinct tokens: {entries} entries, {bytes} bytes");
}
