//! Opaque tokens through RFC 7662 introspection, against the `TestIssuer`'s real
//! introspection endpoint on loopback.

mod common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use jwks_auth::testing::{DpopKey, JwksBehavior, TestIssuer};
use jwks_auth::{Algorithm, AuthErrorKind as K, Claims, Dpop, JwksAuth, Refresh};

fn routes(auth: JwksAuth) -> (Router, Hits) {
    let (me, hits) = app(auth.clone());
    let admin = Router::new()
        .route(
            "/admin",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .route_layer(auth.require_scopes(["admin"]))
        .layer(auth);
    (me.merge(admin), hits)
}

async fn get_path(app: &Router, path: &str, token: &str) -> Reply {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    send_request(app, request).await
}

#[tokio::test]
async fn an_opaque_token_is_introspected_and_a_jwt_is_not() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().introspection(issuer.introspection());
    let (app, hits) = routes(auth.clone());
    let opaque = issuer.opaque(issuer.token().subject("olivia").scope("read"));
    let reply = send(&app, &opaque).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "olivia"),
        "{reply:?}"
    );
    assert_eq!(issuer.introspection_count(), 1);
    // Cached: no second call.
    assert_eq!(send(&app, &opaque).await.status, StatusCode::OK);
    assert_eq!(issuer.introspection_count(), 1);
    // Scope-gated like a JWT.
    let reply = get_path(&app, "/admin", &opaque).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let admin = issuer.opaque(issuer.token().subject("ada").scope("admin"));
    assert_eq!(get_path(&app, "/admin", &admin).await.body, "ada");
    // A JWT keeps the key set path.
    let calls = issuer.introspection_count();
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::OK
    );
    assert_eq!(issuer.introspection_count(), calls);
    assert_eq!(hits.get(), 3);
    let status = auth.status().introspection.unwrap();
    assert_eq!((status.calls, status.consecutive_failures), (2, 0));
    assert!(status.last_success.is_some() && status.cache_entries == 2);
}

#[tokio::test]
async fn answers_are_judged_like_tokens() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer().introspection(issuer.introspection()));
    let cases = [
        ("unknown", "never-issued-token".to_owned(), K::InactiveToken),
        (
            "expired",
            issuer.opaque(issuer.token().expires_in(-3600)),
            K::Expired,
        ),
        (
            "other audience",
            issuer.opaque(issuer.token().audience("other")),
            K::InvalidAudience,
        ),
        (
            "other issuer",
            issuer.opaque(issuer.token().claim("iss", "https://evil.example")),
            K::InvalidIssuer,
        ),
        (
            "no exp",
            issuer.opaque(issuer.token().without_claim("exp")),
            K::MissingClaim,
        ),
        (
            "bound, as bearer",
            issuer.opaque(issuer.token().claim("cnf", serde_json::json!({"jkt": "x"}))),
            K::BoundToken,
        ),
    ];
    for (case, token, kind) in cases {
        assert_invalid_token(&send(&app, &token).await, kind.description());
        let _ = case;
    }
    // Answers that are not `active: true`.
    for body in [
        r#"{"active": false}"#,
        r#"{"active": "true", "exp": 9999999999}"#,
        r#"{"active": 1}"#,
        r#"{"active": true, "active": true}"#,
        "not json",
        "[]",
    ] {
        issuer.set_introspection_behavior(JwksBehavior::Body(body.to_owned()));
        let reply = send(&app, "some-opaque-token").await;
        assert_invalid_token(&reply, K::InactiveToken.description());
    }
    assert_eq!(hits.get(), 0);
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_the_cache_bound_has_passed() {
    let issuer = TestIssuer::start().await;
    let cached = issuer.introspection().cache_for(Duration::from_millis(800));
    let (app, _) = app(issuer.layer().introspection(cached));
    let (uncached_app, _) = common::app(
        issuer
            .layer()
            .introspection(issuer.introspection().cache_for(Duration::ZERO)),
    );
    let token = issuer.opaque(issuer.token());
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    assert_eq!(send(&uncached_app, &token).await.status, StatusCode::OK);
    issuer.revoke(&token);
    // Without a cache: refused at once. With one: accepted until its bound, as documented.
    assert_invalid_token(
        &send(&uncached_app, &token).await,
        K::InactiveToken.description(),
    );
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_invalid_token(&send(&app, &token).await, K::InactiveToken.description());
    // An inactive answer is never cached: each try asks again.
    let calls = issuer.introspection_count();
    for _ in 0..3 {
        send(&app, &token).await;
    }
    assert_eq!(issuer.introspection_count(), calls + 3);
}

/// An endpoint that cannot answer is the operator's problem: 503 with `Retry-After`,
/// within the timeout, never an accept; refused credentials are an ERROR.
#[tokio::test]
async fn an_endpoint_that_cannot_answer_is_a_503() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let timeout = Duration::from_millis(300);
    let auth = issuer
        .layer()
        .refresh(Refresh::default().timeout(timeout))
        .introspection(issuer.introspection().cache_for(Duration::ZERO));
    let (app, hits) = app(auth.clone());
    let token = issuer.opaque(issuer.token());
    for behavior in [
        JwksBehavior::Status(500),
        JwksBehavior::Status(401),
        JwksBehavior::Hang,
        JwksBehavior::Redirect(issuer.introspection_url()),
        JwksBehavior::Body(format!(
            r#"{{"active": true, "pad": "{}"}}"#,
            "x".repeat(600 * 1024)
        )),
        JwksBehavior::Drip(Duration::from_millis(1)),
    ] {
        issuer.set_introspection_behavior(behavior.clone());
        let started = Instant::now();
        let reply = send(&app, &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert!(reply.headers.contains_key("retry-after"));
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
        assert!(
            started.elapsed() < timeout + Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(hits.get(), 0);
    assert_eq!(
        logs.count(
            tracing::Level::ERROR,
            "refused this service's client credentials"
        ),
        1
    );
    let status = auth.status().introspection.unwrap();
    assert_eq!(status.consecutive_failures, 6);
    assert!(status.last_error.is_some());
    // Back to normal: accepted, and the health is good again.
    issuer.set_introspection_behavior(JwksBehavior::Normal);
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    assert_eq!(auth.status().introspection.unwrap().consecutive_failures, 0);
}

#[tokio::test]
async fn client_secret_post_and_every_token_mode() {
    let issuer = TestIssuer::start().await;
    let post = issuer.introspection().client_secret_post().all_tokens();
    let (app, _) = app(issuer.layer().introspection(post));
    let token = issuer.opaque(issuer.token().subject("pat"));
    assert_eq!(send(&app, &token).await.body, "pat");
    // With all_tokens, a JWT is introspected too (and unknown to the endpoint).
    let calls = issuer.introspection_count();
    assert_invalid_token(
        &send(&app, &issuer.token().sign()).await,
        K::InactiveToken.description(),
    );
    assert_eq!(issuer.introspection_count(), calls + 1);
}

/// RFC 9449 §6.2: `cnf.jkt` in the answer binds an opaque token as a JWT's does.
#[tokio::test]
async fn a_dpop_bound_opaque_token_needs_its_proof() {
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .introspection(issuer.introspection())
        .dpop(Dpop::allowed().base_url("https://api.example.com"));
    let (app, hits) = app(auth);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.opaque(issuer.token().subject("dee").bound_to(&client));
    let dpop = |proof: &str| {
        Request::get("/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let url = "https://api.example.com/me";
    let reply = send_request(&app, dpop(&client.proof("GET", url, &token))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "dee"),
        "{reply:?}"
    );
    // Another key's proof, fresh and cached: refused.
    let other = DpopKey::generate(Algorithm::ES256);
    let reply = send_request(&app, dpop(&other.proof("GET", url, &token))).await;
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
    // As a bearer token: refused.
    let reply = send(&app, &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json()["error_description"],
        K::BoundToken.description()
    );
    assert_eq!(hits.get(), 1);
}

/// 20,000 random opaque tokens cost at most the budget's calls (a burst of 100, then 50
/// a second), bounded memory; past the budget, 503 at once; JWTs are never behind it.
#[tokio::test]
async fn a_flood_of_random_opaque_tokens_costs_at_most_the_budget() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().introspection(issuer.introspection());
    let (app, _) = app(auth);
    let jwt = issuer.token().sign();
    let before = rss();
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..20_000u32 {
        let reply = send(
            &app,
            &format!("random-opaque-{i}-{}", i.wrapping_mul(2_654_435_761)),
        )
        .await;
        *statuses.entry(reply.status.as_u16()).or_insert(0) += 1;
        if i % 1000 == 0 {
            assert_eq!(
                send(&app, &jwt).await.status,
                StatusCode::OK,
                "a JWT during the flood"
            );
        }
    }
    let elapsed = started.elapsed();
    let calls = issuer.introspection_count();
    let budget = 100 + (50.0 * elapsed.as_secs_f64()).ceil() as u64;
    let growth = rss().saturating_sub(before);
    println!(
        "introspection flood: 20000 random opaque tokens in {elapsed:?}: {statuses:?}; {calls} calls \
         (budget {budget}); resident memory {} MB before, +{} MB",
        before / 1_000_000,
        growth / 1_000_000
    );
    assert!(calls <= budget, "{calls} calls, budget {budget}");
    assert_eq!(statuses.get(&401).copied().unwrap_or(0) as u64, calls);
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(growth < 64_000_000, "+{growth} bytes");
    // The budget recovers: a moment later a real opaque token is introspected again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let real = issuer.opaque(issuer.token().subject("after"));
    assert_eq!(send(&app, &real).await.body, "after");
}

/// `Introspection::discovered`: the endpoint from the issuer's discovery document, on a
/// `from_issuer` layer; elsewhere a configuration error.
#[tokio::test]
async fn the_endpoint_from_discovery() {
    use jwks_auth::testing::{AUDIENCE, INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET};
    let issuer = TestIssuer::start().await;
    let discovered = || {
        jwks_auth::Introspection::discovered(INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET)
    };
    let auth = JwksAuth::from_issuer(issuer.issuer())
        .audience(AUDIENCE)
        .introspection(discovered());
    let (app, _) = app(auth);
    let token = issuer.opaque(issuer.token().subject("disco"));
    assert_eq!(send(&app, &token).await.body, "disco");
    assert_eq!(
        send(&app, &issuer.token().subject("jwt").sign()).await.body,
        "jwt"
    );
    let fixed = issuer.layer().introspection(discovered());
    assert_eq!(
        fixed.validate().map_err(|e| e.kind().clone()),
        Err(jwks_auth::ConfigErrorKind::IntrospectionEndpoint)
    );
}

/// RFC 9701: answers signed by the provider, verified with the layer's key set; an
/// unsigned (or wrongly signed) answer is then refused.
#[tokio::test]
async fn signed_answers_are_verified_with_the_key_set() {
    let issuer = TestIssuer::start().await;
    let signed = issuer
        .introspection()
        .signed_answers()
        .cache_for(Duration::ZERO);
    let (app, hits) = app(issuer.layer().introspection(signed));
    let token = issuer.opaque(issuer.token().subject("sig"));
    assert_eq!(send(&app, &token).await.body, "sig");
    issuer.revoke(&token);
    assert_invalid_token(&send(&app, &token).await, K::InactiveToken.description());
    // A plain answer where a signed one is expected, or one signed by a stranger.
    let stranger = jwks_auth::testing::TestKey::generate(Algorithm::RS256, "rsa-1");
    let forged = stranger.sign_compact(
        Algorithm::RS256,
        r#"{"typ":"token-introspection+jwt","alg":"RS256","kid":"rsa-1"}"#,
        &serde_json::json!({
            "iss": issuer.issuer(), "aud": jwks_auth::testing::INTROSPECTION_CLIENT_ID,
            "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            "token_introspection": {"active": true, "sub": "x", "aud": "test-api", "iss": issuer.issuer(), "exp": 9_999_999_999u64},
        })
        .to_string(),
    );
    for body in [
        r#"{"active": true, "sub": "x", "aud": "test-api", "exp": 9999999999}"#.to_owned(),
        forged,
    ] {
        issuer.set_introspection_behavior(JwksBehavior::Body(body));
        assert_invalid_token(
            &send(&app, "any-opaque").await,
            K::InactiveToken.description(),
        );
    }
    assert_eq!(hits.get(), 1);
}

/// Feature `metrics`: calls by outcome, the budget's refusals, cache hits.
#[cfg(feature = "metrics")]
#[test]
fn introspection_metrics() {
    let text = scrape(async {
        let issuer = TestIssuer::start().await;
        let intro = issuer.introspection().budget(2, 0.001);
        let (app, _) = app(issuer.layer().introspection(intro));
        let token = issuer.opaque(issuer.token());
        assert_eq!(send(&app, &token).await.status, StatusCode::OK);
        assert_eq!(send(&app, &token).await.status, StatusCode::OK); // cached
        issuer.set_introspection_behavior(JwksBehavior::Status(500));
        let other = issuer.opaque(issuer.token());
        assert_eq!(
            send(&app, &other).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // The budget of 2 is spent.
        assert_eq!(
            send(&app, "third").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    });
    let value = |prefix: &str| metric(&text, prefix);
    assert_eq!(
        value(r#"jwks_auth_introspections_total{outcome="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(r#"jwks_auth_introspections_total{outcome="status"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(r#"jwks_auth_introspections_total{outcome="budget"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("jwks_auth_introspection_cache_hits_total"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("jwks_auth_introspection_seconds"), "{text}");
}

/// On a multi-issuer layer with issuer rules, an answer's `iss` must be one the layer
/// trusts, as a JWT's must.
#[tokio::test]
async fn an_answer_from_an_untrusted_issuer_is_refused_on_a_rules_layer() {
    use jwks_auth::testing::{AUDIENCE, TenantIssuer};
    use jwks_auth::{IssuerRule, TrustedIssuer};
    let issuer = TestIssuer::start().await;
    let tenants = TenantIssuer::start().await;
    let auth = JwksAuth::multi_issuer([TrustedIssuer::rule(IssuerRule::discovered(
        "tenants",
        tenants.template(),
    ))])
    .audience(AUDIENCE)
    .introspection(issuer.introspection());
    let (app, hits) = app(auth);
    let trusted = issuer.opaque(
        issuer
            .token()
            .subject("t")
            .claim("iss", tenants.issuer("acme")),
    );
    assert_eq!(send(&app, &trusted).await.body, "t");
    let untrusted = issuer.opaque(issuer.token().claim("iss", "https://evil.example/acme"));
    assert_invalid_token(
        &send(&app, &untrusted).await,
        K::InvalidIssuer.description(),
    );
    assert_eq!(hits.get(), 1);
}
