//! Secure by default, loud on misuse: each easy mistake of a new user, reproduced, and
//! what it gets now (status, challenge, the log line at its level, the handler not run).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use common::*;
use jwks_auth::testing::{AUDIENCE, DpopKey, TestIssuer};
use jwks_auth::{
    Algorithm, AuthError, AuthErrorKind as K, Claims, ConfigErrorKind, Dpop, JwksAuth, Scopes,
    SharedClaims,
};
use serde::Deserialize;
use serde_json::json;
use tracing::Level;

fn get_with(path: &str, token: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::empty()).unwrap()
}

/// A handler that counts its calls.
#[derive(Clone, Default)]
struct Ran(Arc<AtomicUsize>);

impl Ran {
    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn handler(&self) -> axum::routing::MethodRouter {
        let ran = self.0.clone();
        get(move || {
            ran.fetch_add(1, Ordering::SeqCst);
            async { "ran" }
        })
    }
}

/// 1. Audience and issuer are checked unless given up by name; without them, the layer
/// does not start.
#[tokio::test]
async fn audience_and_issuer_are_required_or_given_up_by_name() {
    let issuer = TestIssuer::start().await;
    let no_audience = JwksAuth::new(issuer.jwks_url()).issuer(issuer.issuer());
    assert_eq!(
        no_audience.validate().map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::NoAudience)
    );
    let message = panic_of_applying(no_audience);
    assert!(
        message.contains(".audience(") && message.contains(".accept_any_audience()"),
        "{message}"
    );
    let no_issuer = JwksAuth::new(issuer.jwks_url()).audience(AUDIENCE);
    assert_eq!(
        no_issuer.validate().map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::NoIssuer)
    );
    assert!(panic_of_applying(no_issuer).contains(".accept_any_issuer()"));
    // from_issuer binds its own issuer; the audience is still required.
    assert_eq!(
        JwksAuth::from_issuer(issuer.issuer())
            .validate()
            .map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::NoAudience)
    );

    let (checked, hits) = app(issuer.layer());
    let other_api = issuer.token().audience("billing-api").sign();
    assert_invalid_token(
        &send(&checked, &other_api).await,
        K::InvalidAudience.description(),
    );
    let no_aud = issuer.token().without_claim("aud").sign();
    assert_invalid_token(
        &send(&checked, &no_aud).await,
        K::InvalidAudience.description(),
    );
    let evil = issuer.token().claim("iss", "https://evil.example").sign();
    assert_invalid_token(&send(&checked, &evil).await, K::InvalidIssuer.description());
    assert_eq!(hits.get(), 0);

    // Given up by name, each check is gone, and only that one.
    let any = JwksAuth::new(issuer.jwks_url())
        .issuer(issuer.issuer())
        .accept_any_audience();
    let (any_audience, _) = app(any);
    assert_eq!(send(&any_audience, &other_api).await.status, StatusCode::OK);
    assert_eq!(
        send(&any_audience, &evil).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// 2. A route layer added after `.layer(auth)` runs outside it: a 500 and one ERROR
/// naming the fix, never a misleading 401, and the handler does not run.
#[tokio::test]
async fn a_route_layer_outside_the_auth_layer_is_a_500_logged_once() {
    #[derive(Clone, Deserialize)]
    struct Outside {
        #[serde(default)]
        scope: String,
    }
    impl Scopes for Outside {
        fn scope_claim(&self) -> Option<&str> {
            Some(&self.scope)
        }
    }
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .claims::<Outside>()
        .on_rejection(|_: &AuthError| "hook");
    let ran = Ran::default();
    let app: Router = Router::new()
        .route("/orders", ran.handler())
        .layer(auth.clone())
        .route_layer(auth.require_scopes(["orders:write"]));
    let token = issuer.token().scope("orders:write").sign();
    for _ in 0..2 {
        let reply = send_request(&app, get_with("/orders", Some(&token))).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(reply.challenge().is_none(), "not a credentials problem");
        assert!(!reply.body.contains("Outside"), "the type stays in the log");
    }
    assert_eq!(ran.count(), 0);
    assert_eq!(
        logs.count(Level::ERROR, "before .layer(auth)"),
        1,
        "logged once, not per request"
    );
}

/// 3. `Option<Claims<T>>` is `None` only for an anonymous request an optional layer let
/// through; the wrong `T`, or no layer at all, is a 500 and one ERROR.
#[tokio::test]
async fn option_claims_is_none_only_for_the_anonymous() {
    #[derive(Clone, Deserialize)]
    struct Mistyped {
        #[allow(dead_code)]
        sub: String,
    }
    #[derive(Clone, Deserialize)]
    struct Unlayered {}
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let token = issuer.token().sign();
    let answer = |c: Option<Claims<Mistyped>>| async move { c.map_or("none", |_| "some") };
    let wrong_type: Router = Router::new().route("/", get(answer)).layer(issuer.layer());
    let reply = send_request(&wrong_type, get_with("/", Some(&token))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let both = "Mistyped> requested, but the JwksAuth layer produces Claims<jwks_auth::claims::StandardClaims>";
    assert_eq!(logs.count(Level::ERROR, both), 1, "names both types");

    let shared = |c: Option<SharedClaims<Unlayered>>| async move { c.map_or("none", |_| "some") };
    let no_layer: Router = Router::new().route("/", get(shared));
    let reply = send_request(&no_layer, get_with("/", Some(&token))).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(logs.count(Level::ERROR, "no JwksAuth layer ran on"), 1);

    // The one `None`: anonymous, behind an optional layer.
    let optional: Router = Router::new()
        .route(
            "/",
            get(|c: Option<Claims>| async move { c.map_or("none", |_| "some") }),
        )
        .layer(issuer.layer().optional());
    let reply = send_request(&optional, get_with("/", None)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "none")
    );
    let reply = send_request(&optional, get_with("/", Some(&token))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "some")
    );
}

/// 4. Claims that do not fit `T`: 401 `invalid_claims` for the client, a WARN naming the
/// field and serde's reason for the operator, never the value, once a minute.
#[tokio::test]
async fn claims_that_do_not_fit_are_a_warn_naming_the_field() {
    #[derive(Clone, Deserialize)]
    struct WithRoles {
        #[allow(dead_code)]
        roles: Vec<String>,
    }
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let ran = Ran::default();
    let app: Router = Router::new()
        .route("/", ran.handler())
        .layer(issuer.layer().claims::<WithRoles>());
    let token = issuer.token().claim("roles", "admin-secret-value").sign();
    for _ in 0..2 {
        let reply = send_request(&app, get_with("/", Some(&token))).await;
        assert_invalid_token(&reply, K::InvalidClaims.description());
    }
    assert_eq!(ran.count(), 0);
    let warned = "field=roles reason=invalid type: string, expected a sequence";
    assert_eq!(logs.count(Level::WARN, warned), 1, "once a minute");
    assert_eq!(
        logs.count(Level::WARN, "admin-secret-value"),
        0,
        "never the value"
    );
    let missing = issuer.token().sign();
    let reply = send_request(&app, get_with("/", Some(&missing))).await;
    assert_invalid_token(&reply, K::InvalidClaims.description());
    assert_eq!(logs.count(Level::WARN, "missing field `roles`"), 1);
}

/// 5 and 6. Every layer is judged on its own configuration, and a key set that is not a
/// key set is a configuration error, not an empty set.
#[tokio::test]
async fn derived_layers_and_static_key_sets_are_judged_at_start_up() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    auth.validate().unwrap();
    let derived = auth.clone().dpop(Dpop::allowed());
    assert_eq!(
        derived.validate().map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::DpopBaseUrl)
    );
    let err = derived.ready().await.unwrap_err();
    assert_eq!(
        err.config_error().map(|e| e.kind().clone()),
        Some(ConfigErrorKind::DpopBaseUrl)
    );
    assert!(panic_of_applying(derived).contains("Dpop::base_url"));

    let empty = JwksAuth::from_jwks(json!({}))
        .issuer(issuer.issuer())
        .audience(AUDIENCE);
    assert_eq!(
        empty.validate().map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::InvalidJwks)
    );
    assert!(panic_of_applying(empty).contains(r#""keys" array"#));
}

/// 7. DPoP on chosen routes: a DPoP layer next to the bearer layer, one `JwksAuth`, one
/// key set. Nested inside a bearer layer instead, DPoP requests are answered by the outer
/// layer as having no credentials, with a DEBUG line and no ERROR.
#[tokio::test]
async fn dpop_on_chosen_routes() {
    const BASE: &str = "https://api.example.com";
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    let app: Router = Router::new()
        .route("/payments", post(|| async { "paid" }))
        .layer(auth.clone().dpop(Dpop::required().base_url(BASE)))
        .merge(
            Router::new()
                .route("/me", get(|| async { "me" }))
                .layer(auth.clone()),
        );
    let client = DpopKey::generate(Algorithm::ES256);
    let bound = issuer.token().bound_to(&client).sign();
    let dpop_request = |method: &str, path: &str| {
        let proof = client.proof(method, &format!("{BASE}{path}"), &bound);
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let reply = send_request(&app, dpop_request("POST", "/payments")).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "paid")
    );
    let plain = issuer.token().sign();
    let reply = send_request(&app, get_with("/me", Some(&plain))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send_request(&app, get_with("/me", Some(&bound))).await;
    assert_invalid_token(&reply, K::BoundToken.description());
    assert_eq!(issuer.fetch_count(), 1, "one key set for both layers");

    let nested: Router = Router::new()
        .route("/payments", post(|| async { "paid" }))
        .layer(auth.clone().dpop(Dpop::required().base_url(BASE)))
        .layer(auth);
    let reply = send_request(&nested, dpop_request("POST", "/payments")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some("Bearer"));
    assert_eq!(
        logs.count(Level::DEBUG, "Authorization: DPoP on a layer without DPoP"),
        1
    );
    assert_eq!(logs.count(Level::ERROR, ""), 0);
}

/// 9. Scopes in handlers for any claims type, and a hook that returns any
/// `IntoResponse`, its status and headers kept or completed.
#[tokio::test]
async fn handler_scopes_for_custom_claims_and_any_response_from_the_hook() {
    #[derive(Clone, Deserialize)]
    struct Custom {
        #[serde(default)]
        scope: String,
    }
    impl Scopes for Custom {
        fn scope_claim(&self) -> Option<&str> {
            Some(&self.scope)
        }
    }
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .realm("api")
        .claims::<Custom>()
        .on_rejection(|err: &AuthError| {
            (
                StatusCode::from_u16(err.status().as_u16()).unwrap(),
                axum::Json(json!({ "code": err.kind().as_str() })),
            )
        });
    let app: Router = Router::new()
        .route(
            "/delete",
            get(|Claims(c): Claims<Custom>| async move {
                c.require_scopes(["orders:delete"])?;
                Ok::<_, AuthError>("deleted")
            }),
        )
        .layer(auth);
    let reply = send_request(&app, get_with("/delete", Some(&issuer.token().sign()))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json(), json!({ "code": "insufficient_scope" }));
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer realm="api", error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:delete""#
        )
    );
    let token = issuer.token().scope("orders:delete").sign();
    let reply = send_request(&app, get_with("/delete", Some(&token))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "deleted")
    );
}
