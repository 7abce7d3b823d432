//! What real apps need around the layer, through a real `Router`: per-route scopes and
//! predicates, a claims check on the layer, custom rejection responses, token sources.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, Request, StatusCode};
use axum::routing::{get, post};
use common::*;
use jwks_auth::testing::TestIssuer;
use jwks_auth::{AuthError, AuthErrorKind as K, Claims, Scopes, StandardClaims};
use serde_json::json;

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::get(path);
    for (n, v) in headers {
        r = r.header(*n, *v);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn scopes_and_predicates_per_route() {
    let issuer = TestIssuer::start().await;
    let orders = Router::new()
        .route("/orders", post(|| async { "created" }))
        .route_layer(
            issuer
                .layer()
                .require_scopes(["orders:write", "orders:read"]),
        );
    let reports = Router::new()
        .route("/reports", get(|| async { "report" }))
        .route_layer(issuer.layer().require_any_scope(["reports:read", "admin"]));
    let admin = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(issuer.layer().authorize(|c: &StandardClaims| {
            c.extra
                .get("roles")
                .and_then(|r| r.as_array())
                .is_some_and(|roles| roles.iter().any(|r| r == "admin"))
        }));
    let app = orders.merge(reports).merge(admin).layer(issuer.layer());

    let send_to = |method: &'static str, path: &'static str, token: String| {
        let app = app.clone();
        async move {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            send_request(&app, request).await
        }
    };

    let both = issuer.token().scope("orders:read orders:write").sign();
    assert_eq!(
        send_to("POST", "/orders", both).await.status,
        StatusCode::OK
    );
    // Entra/Okta style `scp` array counts too.
    let scp = issuer
        .token()
        .claim("scp", json!(["orders:write", "orders:read"]))
        .sign();
    assert_eq!(send_to("POST", "/orders", scp).await.status, StatusCode::OK);

    let one = issuer.token().scope("orders:read").sign();
    let reply = send_to("POST", "/orders", one).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer error="insufficient_scope", error_description="the token lacks a required scope", scope="orders:write orders:read""#
        )
    );
    // Case-sensitive, exact.
    let upper = issuer.token().scope("ORDERS:WRITE orders:read").sign();
    assert_eq!(
        send_to("POST", "/orders", upper).await.status,
        StatusCode::FORBIDDEN
    );

    let admin_scope = issuer.token().scope("admin").sign();
    assert_eq!(
        send_to("GET", "/reports", admin_scope).await.status,
        StatusCode::OK
    );
    let none = issuer.token().sign();
    let reply = send_to("GET", "/reports", none.clone()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .challenge()
            .unwrap()
            .ends_with(r#"scope="reports:read admin""#)
    );

    let admin_role = issuer.token().claim("roles", json!(["admin"])).sign();
    assert_eq!(
        send_to("GET", "/admin", admin_role).await.status,
        StatusCode::OK
    );
    let reply = send_to("GET", "/admin", none).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer error="insufficient_scope", error_description="the token does not grant access to this resource""#
        )
    );
    // Authentication still comes first: a bad token is 401, not 403.
    let expired = issuer.token().scope("admin").expires_in(-3600).sign();
    assert_invalid_token(
        &send_to("GET", "/reports", expired).await,
        K::Expired.description(),
    );
}

#[tokio::test]
async fn authorization_without_claims_is_401() {
    let issuer = TestIssuer::start().await;
    // Behind an optional layer, a request without a token reaches the scope check
    // without claims: refused as unauthenticated.
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route_layer(issuer.layer().require_scopes(["orders:read"]))
        .layer(issuer.layer().optional());
    let reply = send_request(&app, get_with("/orders", &[])).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.challenge(), Some("Bearer"));
    // Without any JwksAuth layer at all: a wiring mistake (500), never a pass.
    let bare = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route_layer(issuer.layer().require_scopes(["orders:read"]));
    assert_eq!(
        send_request(&bare, get_with("/orders", &[])).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn handler_level_scope_check() {
    let issuer = TestIssuer::start().await;
    let app = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move {
                c.require_scopes(["profile"])?;
                Ok::<_, AuthError>("profile")
            }),
        )
        .layer(issuer.layer());
    assert_eq!(
        send(&app, &issuer.token().scope("profile").sign())
            .await
            .status,
        StatusCode::OK
    );
    let reply = send(&app, &issuer.token().sign()).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.challenge().unwrap().ends_with(r#"scope="profile""#));
}

#[tokio::test]
async fn a_claims_check_on_the_layer_can_answer_401_or_403() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().cache(16).check(|c: &StandardClaims| {
        match (c.extra.get("email_verified"), c.extra.get("tenant")) {
            (Some(serde_json::Value::Bool(true)), Some(t)) if t == "acme" => Ok(()),
            (Some(serde_json::Value::Bool(true)), _) => Err(K::AccessDenied.into()),
            _ => Err(K::InvalidClaims.into()),
        }
    });
    let (app, hits) = app(auth);
    let good = issuer
        .token()
        .claim("email_verified", true)
        .claim("tenant", "acme")
        .sign();
    assert_eq!(send(&app, &good).await.status, StatusCode::OK);
    assert_eq!(
        send(&app, &good).await.status,
        StatusCode::OK,
        "cache hit, checked again"
    );
    let other_tenant = issuer
        .token()
        .claim("email_verified", true)
        .claim("tenant", "zeta")
        .sign();
    for _ in 0..2 {
        let reply = send(&app, &other_tenant).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "a cached token is checked at every hit"
        );
    }
    let unverified = issuer.token().claim("tenant", "acme").sign();
    assert_invalid_token(
        &send(&app, &unverified).await,
        K::InvalidClaims.description(),
    );
    assert_eq!(hits.get(), 2);
}

#[tokio::test]
async fn rejections_can_be_replaced() {
    let issuer = TestIssuer::start().await;
    // The hook returns any `IntoResponse`; the status and challenge are kept.
    let auth = issuer.layer().realm("api").on_rejection(|err: &AuthError| {
        axum::Json(json!({ "code": format!("{:?}", err.kind()), "message": err.to_string() }))
    });
    let (app, _) = app(auth);
    let reply = send(&app, &issuer.token().expires_in(-3600).sign()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json(),
        json!({"code": "Expired", "message": "the token has expired"})
    );
    assert_eq!(
        reply.challenge(),
        Some(
            r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
        )
    );
    let reply = send_request(&app, get_with("/me", &[])).await;
    assert_eq!(reply.json()["code"], "MissingCredentials");
    assert_eq!(reply.challenge(), Some(r#"Bearer realm="api""#));
}

#[tokio::test]
async fn token_sources() {
    let issuer = TestIssuer::start().await;
    let token = issuer.token().subject("cookie-user").sign();
    let other = issuer.token().subject("someone-else").sign();

    let (cookie_app, _) = app(issuer.layer().token_sources([
        jwks_auth::TokenSource::Bearer,
        jwks_auth::TokenSource::Cookie("session".into()),
    ]));
    let cookie = format!("theme=dark; session={token}");
    let reply = send_request(&cookie_app, get_with("/me", &[("cookie", &cookie)])).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "cookie-user")
    );
    // The bearer header still works; both carrying the same token is fine…
    let bearer = format!("Bearer {token}");
    let reply = send_request(
        &cookie_app,
        get_with("/me", &[("cookie", &cookie), ("authorization", &bearer)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // …two different tokens are a malformed request: the layer never picks one.
    let bearer_other = format!("Bearer {other}");
    let reply = send_request(
        &cookie_app,
        get_with(
            "/me",
            &[("cookie", &cookie), ("authorization", &bearer_other)],
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply
            .challenge()
            .unwrap()
            .contains(r#"error="invalid_request""#)
    );

    let (header_app, _) = app(issuer
        .layer()
        .token_sources([jwks_auth::TokenSource::Header(HeaderName::from_static(
            "x-api-token",
        ))]));
    let reply = send_request(&header_app, get_with("/me", &[("x-api-token", &token)])).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send_request(&header_app, get_with("/me", &[("authorization", &bearer)])).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "bearer header turned off"
    );

    // Query tokens only when opted in.
    let (plain_app, _) = app(issuer.layer());
    let url = format!("/me?access_token={token}");
    assert_eq!(
        send_request(&plain_app, get_with(&url, &[])).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (query_app, _) = app(issuer.layer().token_sources([
        jwks_auth::TokenSource::Bearer,
        jwks_auth::TokenSource::Query("access_token".into()),
    ]));
    assert_eq!(
        send_request(&query_app, get_with(&url, &[])).await.status,
        StatusCode::OK
    );

    let (custom_app, _) = app(issuer.layer().token_sources([
        jwks_auth::TokenSource::Bearer,
        jwks_auth::TokenSource::custom(|headers, _uri| {
            headers
                .get("x-forwarded-authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Token "))
                .map(str::to_owned)
        }),
    ]));
    let forwarded = format!("Token {token}");
    let reply = send_request(
        &custom_app,
        get_with("/me", &[("x-forwarded-authorization", &forwarded)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    // Whatever the source, a bad token is still a bad token.
    let expired = issuer.token().expires_in(-3600).sign();
    let bad = format!("session={expired}");
    assert_invalid_token(
        &send_request(&cookie_app, get_with("/me", &[("cookie", &bad)])).await,
        K::Expired.description(),
    );
}

#[tokio::test]
async fn typ_required_claims_and_numeric_dates() {
    let issuer = TestIssuer::start().await;
    let (app, _) = app(issuer
        .layer()
        .require_typ("at+jwt")
        .require_claims(["sub", "client_id"]));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let base = || issuer.token().claim("client_id", "c1");
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let token = base().header("typ", typ).sign();
        assert_eq!(send(&app, &token).await.status, StatusCode::OK, "{typ}");
    }
    for typ in ["JWT", "application/jwt", "at+jwt2"] {
        let token = base().header("typ", typ).sign();
        assert_invalid_token(&send(&app, &token).await, K::InvalidType.description());
    }
    let no_client = issuer.token().header("typ", "at+jwt").sign();
    assert_invalid_token(&send(&app, &no_client).await, K::MissingClaim.description());

    // NumericDates as fractional numbers, and `aud` as an array, through the layer.
    let fractional = base()
        .header("typ", "at+jwt")
        .claim("exp", now + 600.5)
        .claim("nbf", now - 0.25)
        .claim("iat", now - 0.5)
        .audience(json!(["other", jwks_auth::testing::AUDIENCE]))
        .sign();
    assert_eq!(send(&app, &fractional).await.status, StatusCode::OK);
    let in_the_past = base()
        .header("typ", "at+jwt")
        .claim("exp", now - 120.5)
        .sign();
    assert_invalid_token(&send(&app, &in_the_past).await, K::Expired.description());
}

/// Feature `metrics`: each request is counted once, by its final outcome. A request the
/// layer let through and a route layer (or the handler) then refused counts as that
/// refusal only, never also as accepted.
#[cfg(feature = "metrics")]
#[test]
fn a_refusal_behind_the_layer_is_counted_once() {
    let text = scrape(async {
        let issuer = TestIssuer::start().await;
        let auth = issuer.layer();
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
            .layer(auth);
        let plain = issuer.token().sign();
        let admin = issuer.token().scope("admin").sign();
        let status = |path: &'static str, token: String| {
            let app = app.clone();
            async move {
                let request = get_with(path, &[("authorization", &format!("Bearer {token}"))]);
                send_request(&app, request).await.status
            }
        };
        assert_eq!(status("/admin", plain.clone()).await, StatusCode::FORBIDDEN);
        assert_eq!(status("/delete", plain).await, StatusCode::FORBIDDEN);
        assert_eq!(status("/admin", admin).await, StatusCode::OK);
    });
    let count = |labels: &str| {
        text.lines()
            .find(|l| l.starts_with("jwks_auth_requests_total{") && l.contains(labels))
            .and_then(|l| l.rsplit(' ').next())
            .map(|v| v.parse::<f64>().unwrap())
    };
    assert_eq!(count(r#"outcome="accepted""#), Some(1.0), "{text}");
    assert_eq!(
        count(r#"kind="insufficient_scope""#),
        Some(2.0),
        "the route layer's and the handler's 403, once each: {text}"
    );
    let total: f64 = text
        .lines()
        .filter(|l| l.starts_with("jwks_auth_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(total, 3.0, "three requests, three counts: {text}");
}
