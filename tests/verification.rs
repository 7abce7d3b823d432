//! Verification through a real `Router` against a real loopback JWKS: every algorithm,
//! the ordinary rejections, the RFC 6750 responses, the extractors. Hostile input, class
//! by class, is in `adversarial.rs`.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use jwks_auth::testing::{TestIssuer, TestKey};
use jwks_auth::{Algorithm, AuthError, AuthErrorKind as K, Claims, JwksAuth};
use serde_json::json;

/// Every algorithm the crate accepts by default that the test issuer's own keys sign
/// (all but ES512, tested with a P-521 key of its own below).
const ALL: [Algorithm; 10] = jwks_auth::testing::ISSUER_ALGORITHMS;

#[tokio::test]
async fn every_supported_algorithm_is_accepted() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer());
    for alg in ALL {
        let token = issuer.token().alg(alg).subject(alg.as_str()).sign();
        let reply = send(&app, &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{alg:?}: {reply:?}");
        assert_eq!(reply.body, alg.as_str());
    }
    assert_eq!(hits.get(), ALL.len());
    assert_eq!(issuer.fetch_count(), 1, "one fetch serves every request");
}

#[tokio::test]
async fn a_token_without_kid_is_tried_against_fitting_keys() {
    let issuer = TestIssuer::start().await;
    let (app, _) = app(issuer.layer());
    for alg in [Algorithm::RS256, Algorithm::ES384, Algorithm::EdDSA] {
        let reply = send(&app, &issuer.token().alg(alg).no_kid().sign()).await;
        assert_eq!(reply.status, StatusCode::OK, "{alg:?}");
    }
}

/// Swaps the payload of a signed token for another, keeping header and signature.
fn with_payload(token: &str, payload: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], b64(payload.as_bytes()), parts[2])
}

#[tokio::test]
async fn ordinary_bad_tokens_get_401_invalid_token() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let rsa = issuer.key(Algorithm::RS256);
    let stranger = std::sync::Arc::new(TestKey::generate(Algorithm::RS256, "stranger"));
    let good = issuer.token().sign();
    let base_claims = |extra: &str| {
        format!(
            r#"{{"iss":"{}","aud":"test-api","sub":"u","exp":{}{extra}}}"#,
            issuer.issuer(),
            now + 600
        )
    };

    let cases: Vec<(&str, String, K)> = vec![
        (
            "tampered payload",
            with_payload(&good, &base_claims(r#","admin":true"#)),
            K::InvalidSignature,
        ),
        (
            "signature of another key",
            issuer.token().key(stranger.clone()).kid(rsa.kid()).sign(),
            K::InvalidSignature,
        ),
        (
            "expired",
            issuer.token().expires_in(-120).sign(),
            K::Expired,
        ),
        (
            "nbf in the future",
            issuer.token().claim("nbf", now + 600).sign(),
            K::NotYetValid,
        ),
        (
            "wrong issuer",
            issuer.token().claim("iss", "https://evil.example").sign(),
            K::InvalidIssuer,
        ),
        (
            "no issuer",
            issuer.token().without_claim("iss").sign(),
            K::InvalidIssuer,
        ),
        (
            "wrong audience",
            issuer.token().audience("other-api").sign(),
            K::InvalidAudience,
        ),
        (
            "audience array without ours",
            issuer.token().audience(json!(["a", "b"])).sign(),
            K::InvalidAudience,
        ),
        (
            "no exp",
            issuer.token().without_claim("exp").sign(),
            K::MissingClaim,
        ),
        (
            "exp as a string",
            issuer.token().claim("exp", (now + 600).to_string()).sign(),
            K::InvalidClaims,
        ),
        (
            "exp as null",
            issuer.token().claim("exp", serde_json::Value::Null).sign(),
            K::InvalidClaims,
        ),
        (
            "aud as a number",
            issuer.token().claim("aud", 7).sign(),
            K::InvalidClaims,
        ),
        (
            "unknown kid (after one refresh)",
            issuer.token().key(stranger.clone()).sign(),
            K::UnknownKey,
        ),
    ];
    let fetches_before = issuer.fetch_count();
    for (name, token, kind) in &cases {
        let reply = send(&app, token).await;
        assert_invalid_token(&reply, kind.description());
        assert_eq!(
            reply.json()["error_description"],
            kind.description(),
            "{name}"
        );
        let challenge = reply.challenge().unwrap();
        assert!(
            !challenge.contains("stranger") && !challenge.contains(&token[..10]),
            "{name}"
        );
    }
    assert_eq!(hits.get(), 0, "the handler never ran");
    // The unknown kids asked for one refresh between them (cooldown), nothing else did.
    assert_eq!(issuer.fetch_count(), fetches_before.max(1) + 1);
}

#[tokio::test]
async fn transport_errors_follow_rfc_6750() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer().realm("orders"));
    let token = issuer.token().sign();

    // No credentials: 401 with a bare challenge (and the realm).
    let request = Request::get("/me").body(Body::empty()).unwrap();
    let reply = send_request(&app, request).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some(r#"Bearer realm="orders""#));
    for other in [&b"Basic dXNlcjpwYXNz"[..], b"DPoP abc"] {
        let reply = send_auth(&app, &[other]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.challenge(), Some(r#"Bearer realm="orders""#));
    }

    // Malformed requests: 400 invalid_request.
    let two = format!("Bearer {token} {token}");
    let one = format!("Bearer {token}");
    let bad_cases: Vec<Vec<&[u8]>> = vec![
        vec![b"Bearer"],
        vec![b"Bearer   "],
        vec![two.as_bytes()],
        vec![one.as_bytes(), one.as_bytes()],
        vec![b"Bearer a\"b.c.d"],
        vec![b"Bearer \xffabc"],
    ];
    for values in bad_cases {
        let reply = send_auth(&app, &values).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{values:?}");
        assert_eq!(
            reply.challenge(),
            Some(
                r#"Bearer realm="orders", error="invalid_request", error_description="malformed authorization header""#
            )
        );
        assert_eq!(reply.json()["error"], "invalid_request");
    }

    // Scheme is case-insensitive; the token is accepted.
    let lower = format!("bearer {token}");
    assert_eq!(
        send_auth(&app, &[lower.as_bytes()]).await.status,
        StatusCode::OK
    );
    assert_eq!(hits.get(), 1);
}

#[tokio::test]
async fn rejections_carry_the_auth_error_and_never_echo_input() {
    let issuer = TestIssuer::start().await;
    let response_seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = response_seen.clone();
    let app = Router::new()
        .route("/me", get(|| async { "ok" }))
        .layer(issuer.layer())
        .layer(axum::middleware::map_response(
            move |r: axum::response::Response| {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() = r.extensions().get::<AuthError>().map(|e| e.kind());
                    r
                }
            },
        ));
    let hostile_kid = "\"><script>alert(1)</script>\r\nX-Evil: 1";
    let token = issuer.token().kid(hostile_kid).sign();
    let reply = send(&app, &token).await;
    assert_invalid_token(&reply, K::UnknownKey.description());
    assert!(!reply.body.contains("<script>") && !reply.body.contains(&token));
    assert!(reply.headers.get("x-evil").is_none());
    assert_eq!(*response_seen.lock().unwrap(), Some(K::UnknownKey));
    assert_eq!(reply.headers["content-type"], "application/json");
}

#[derive(Clone, serde::Deserialize)]
struct TenantClaims {
    sub: String,
    tenant: String,
}

#[tokio::test]
async fn typed_claims_and_their_rejection() {
    let issuer = TestIssuer::start().await;
    let app = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims<TenantClaims>| async move { format!("{}@{}", c.sub, c.tenant) }),
        )
        .layer(issuer.layer().claims::<TenantClaims>());
    let ok = issuer.token().claim("tenant", "acme").sign();
    let reply = send(&app, &ok).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "user-1@acme")
    );

    // A payload that does not fit the type is a bad token, not a 500.
    for token in [
        issuer.token().sign(),
        issuer.token().claim("tenant", 5).sign(),
    ] {
        assert_invalid_token(&send(&app, &token).await, K::InvalidClaims.description());
    }
}

#[tokio::test]
async fn optional_layer_and_option_extractor() {
    let issuer = TestIssuer::start().await;
    let app = Router::new()
        .route(
            "/me",
            get(|c: Option<Claims>| async move {
                c.and_then(|Claims(c)| c.sub)
                    .unwrap_or_else(|| "anonymous".into())
            }),
        )
        .layer(issuer.layer().optional());
    let reply = send_request(&app, Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    let reply = send(&app, &issuer.token().subject("bob").sign()).await;
    assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "bob"));
    // Present but bad is still rejected.
    let reply = send(&app, &issuer.token().expires_in(-3600).sign()).await;
    assert_invalid_token(&reply, K::Expired.description());
    let reply = send_auth(&app, &[b"Bearer"]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_handler_without_the_layer_gets_500_not_a_panic() {
    let app = Router::new().route(
        "/me",
        get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
    );
    let reply = send_request(&app, Request::get("/me").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !reply.body.contains("StandardClaims"),
        "the type name stays in the log"
    );
}

#[tokio::test]
async fn static_key_sets_work_offline() {
    let key = TestKey::generate(Algorithm::ES256, "static-1");
    // Tokens of a bare signer, with neither `iss` nor `aud`: both checks given up by name.
    let auth = JwksAuth::from_jwks(json!({ "keys": [key.jwk(), {"kty": "oct", "k": "c2VjcmV0"}] }))
        .accept_any_issuer()
        .accept_any_audience();
    assert_eq!(auth.status().kids, ["static-1"]);
    assert_eq!(auth.status().skipped.len(), 1);
    let (app, _) = app(auth);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = key.sign_compact(
        Algorithm::ES256,
        r#"{"alg":"ES256","kid":"static-1"}"#,
        &format!(r#"{{"sub":"s","exp":{}}}"#, now + 60),
    );
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    let unknown = key.sign_compact(
        Algorithm::ES256,
        r#"{"alg":"ES256","kid":"other"}"#,
        &format!(r#"{{"sub":"s","exp":{}}}"#, now + 60),
    );
    assert_invalid_token(&send(&app, &unknown).await, K::UnknownKey.description());
}

#[tokio::test]
async fn the_allow_list_restricts_algorithms() {
    let issuer = TestIssuer::start().await;
    let (app, _) = app(issuer.layer().algorithms([Algorithm::ES256]));
    assert_eq!(
        send(&app, &issuer.token().alg(Algorithm::ES256).sign())
            .await
            .status,
        StatusCode::OK
    );
    for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::EdDSA] {
        assert_invalid_token(
            &send(&app, &issuer.token().alg(alg).sign()).await,
            K::DisallowedAlgorithm.description(),
        );
    }
}

#[tokio::test]
async fn a_jwk_alg_pins_the_algorithm_of_its_key() {
    let issuer = TestIssuer::start().await;
    let pinned = std::sync::Arc::new(
        TestKey::generate(Algorithm::RS256, "pinned").with_jwk_alg(Some(Algorithm::RS256)),
    );
    issuer.add_key(pinned.clone());
    let (app, _) = app(issuer.layer());
    assert_eq!(
        send(&app, &issuer.token().key(pinned.clone()).sign())
            .await
            .status,
        StatusCode::OK
    );
    // Same key, another RSA algorithm: the JWK's alg forbids it.
    let other = issuer.token().key(pinned).alg(Algorithm::PS256).sign();
    assert_invalid_token(&send(&app, &other).await, K::KeyMismatch.description());
}

/// The second hardening round: each of these was accepted (or refused wrongly) before.
#[tokio::test]
async fn null_claims_bound_tokens_and_impossible_validity_are_refused() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer().require_claims(["tenant"]));
    let ok = issuer.token().claim("tenant", "acme").sign();
    assert_eq!(send(&app, &ok).await.status, StatusCode::OK);
    let token = issuer.token().claim("tenant", json!(null)).sign();
    assert_invalid_token(&send(&app, &token).await, K::MissingClaim.description());
    // A sender-constrained token (DPoP `jkt`, mTLS `x5t#S256`) is not a bearer token.
    for cnf in [
        json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({}),
    ] {
        let token = issuer
            .token()
            .claim("tenant", "acme")
            .claim("cnf", cnf)
            .sign();
        assert_invalid_token(&send(&app, &token).await, K::BoundToken.description());
    }
    // `nbf` after `exp`, both within the leeway: valid at no instant.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = issuer
        .token()
        .claim("tenant", "acme")
        .claim("exp", now + 10)
        .claim("nbf", now + 20)
        .sign();
    assert_invalid_token(&send(&app, &token).await, K::InvalidClaims.description());
    assert_eq!(hits.get(), 1);
    assert_eq!(issuer.fetch_count(), 1);
}

#[tokio::test]
async fn a_cookie_the_layer_does_not_read_never_denies_service() {
    let issuer = TestIssuer::start().await;
    let token = issuer.token().sign();
    for layer in [
        issuer.layer().token_sources([
            jwks_auth::TokenSource::Bearer,
            jwks_auth::TokenSource::Cookie("session".into()),
        ]),
        issuer
            .layer()
            .token_sources([
                jwks_auth::TokenSource::Bearer,
                jwks_auth::TokenSource::Cookie("session".into()),
            ])
            .optional(),
    ] {
        let (app, _) = app(layer);
        for cookie in [
            &b"theme=caf\xc3\xa9"[..],
            b"theme=caf\xe9; x=\xff",
            b"\xfe\xff",
        ] {
            let request = Request::get("/me")
                .header("authorization", format!("Bearer {token}"))
                .header(
                    "cookie",
                    axum::http::HeaderValue::from_bytes(cookie).unwrap(),
                )
                .body(Body::empty())
                .unwrap();
            let reply = send_request(&app, request).await;
            assert_eq!(reply.status, StatusCode::OK, "{cookie:?}: {reply:?}");
        }
        // The token in our cookie, another cookie with Latin-1 bytes beside it.
        let request = Request::get("/me")
            .header("cookie", "theme=x")
            .header(
                "cookie",
                axum::http::HeaderValue::from_bytes(
                    format!("session={token}; lang=fran\u{e7}ais").as_bytes(),
                )
                .unwrap(),
            )
            .body(Body::empty())
            .unwrap();
        assert_eq!(send_request(&app, request).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn published_private_keys_are_skipped_whatever_their_kty() {
    let issuer = TestIssuer::start().await;
    let rsa = issuer.key(Algorithm::RS256);
    let mut leaked = Vec::new();
    for (alg, member) in [
        (Algorithm::RS256, "d"),
        (Algorithm::RS256, "p"),
        (Algorithm::RS256, "qi"),
        (Algorithm::ES256, "d"),
        (Algorithm::EdDSA, "d"),
    ] {
        let mut jwk = issuer.key(alg).jwk();
        jwk[member] = json!("AQAB");
        jwk["kid"] = json!(format!("{}-{member}", jwk["kid"].as_str().unwrap()));
        leaked.push(jwk);
    }
    leaked.push(rsa.jwk());
    let auth = JwksAuth::from_jwks(json!({ "keys": leaked }));
    let status = auth.status();
    assert_eq!(status.kids, [rsa.kid()]);
    assert_eq!(status.skipped.len(), 5);
    assert!(
        status
            .skipped
            .iter()
            .all(|s| s.reason == jwks_auth::SkipReason::PrivateKey)
    );
}

/// Key and token shapes written by other signers (WebCrypto, authlib, Keycloak, RFC 9864).
#[tokio::test]
async fn key_shapes_from_other_signers_are_accepted() {
    use jwks_auth::testing::JwkExport;
    use std::sync::Arc;
    let issuer = TestIssuer::start().await;
    let webcrypto = Arc::new(
        TestKey::generate(Algorithm::EdDSA, "webcrypto-ed25519").with_export(JwkExport::WebCrypto),
    );
    let short256 = Arc::new(TestKey::generate_short_coordinate(
        Algorithm::ES256,
        "short-p256",
    ));
    let short384 = Arc::new(TestKey::generate_short_coordinate(
        Algorithm::ES384,
        "short-p384",
    ));
    let p521 = Arc::new(TestKey::generate(Algorithm::ES512, "p521"));
    let short521 = Arc::new(TestKey::generate_short_coordinate(
        Algorithm::ES512,
        "short-p521",
    ));
    for key in [&webcrypto, &short256, &short384, &p521, &short521] {
        issuer.add_key(key.clone());
    }
    // The shapes are what the exporters write.
    let jwk = webcrypto.jwk();
    assert_eq!(
        (&jwk["alg"], &jwk["key_ops"], &jwk["ext"]),
        (&json!("Ed25519"), &json!(["verify"]), &json!(true))
    );
    assert!(jwk.get("use").is_none());
    let coordinate_len = |key: &TestKey| {
        let jwk = key.jwk();
        let len = |c: &str| jwk[c].as_str().unwrap().len();
        len("x").min(len("y"))
    };
    assert!(
        coordinate_len(&short256) < 43,
        "a 31-byte coordinate is 42 base64url chars"
    );
    assert!(coordinate_len(&short384) < 64);

    let auth = issuer.layer();
    auth.ready().await.unwrap();
    let (app, hits) = app(auth.clone());
    let ok = |token: String| {
        let app = app.clone();
        async move { send(&app, &token).await }
    };
    // WebCrypto's Ed25519 key verifies tokens labelled EdDSA and Ed25519, and so does a
    // key whose JWK says EdDSA.
    for alg in [Algorithm::EdDSA, Algorithm::Ed25519] {
        let token = issuer.token().alg(alg).key(webcrypto.clone()).sign();
        assert_eq!(ok(token).await.status, StatusCode::OK, "{alg}");
    }
    let reply = ok(issuer.token().alg(Algorithm::Ed25519).sign()).await;
    assert_eq!(reply.status, StatusCode::OK);
    // Short coordinates are left-padded.
    for (alg, key) in [(Algorithm::ES256, &short256), (Algorithm::ES384, &short384)] {
        let token = issuer.token().alg(alg).key(key.clone()).sign();
        assert_eq!(ok(token).await.status, StatusCode::OK, "{alg}");
    }
    // ES512 with the aws_lc_rs backend; with rust_crypto alone, P-521 keys are skipped.
    let kids = auth.status().kids;
    for key in [&p521, &short521] {
        let token = issuer.token().alg(Algorithm::ES512).key(key.clone()).sign();
        if jwks_auth::testing::CRYPTO_BACKEND == "aws_lc_rs" {
            assert!(kids.contains(&key.kid().to_owned()));
            assert_eq!(ok(token).await.status, StatusCode::OK, "{}", key.kid());
        } else {
            assert!(!kids.contains(&key.kid().to_owned()));
            assert_eq!(ok(token).await.status, StatusCode::UNAUTHORIZED);
        }
    }
    assert!(hits.get() >= 5);

    // Ed448 stays unsupported, with a reason that says so; a coordinate longer than the
    // curve is still refused.
    let mut long = TestKey::generate(Algorithm::ES256, "long").jwk();
    let x = jwks_auth_b64d(long["x"].as_str().unwrap());
    long["x"] = json!(b64(&[&[0u8][..], &x].concat()));
    let set = JwksAuth::from_jwks(json!({"keys": [
        {"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64(&[7u8; 57])},
        {"kty": "OKP", "crv": "Ed448", "kid": "ed448-alg", "alg": "Ed448", "x": b64(&[7u8; 57])},
        long,
        webcrypto.jwk(),
    ]}));
    let status = set.status();
    assert_eq!(status.kids, ["webcrypto-ed25519"]);
    let reasons: Vec<_> = status.skipped.iter().map(|s| s.reason).collect();
    assert_eq!(
        reasons,
        [
            jwks_auth::SkipReason::UnsupportedOkpCurve,
            jwks_auth::SkipReason::UnsupportedOkpCurve,
            jwks_auth::SkipReason::WrongLength
        ]
    );
    assert!(reasons[0].description().contains("Ed448"));
}

fn jwks_auth_b64d(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
