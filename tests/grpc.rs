//! gRPC calls (`content-type: application/grpc*`) get trailers-only gRPC statuses from
//! every rejection, the layer's and the route layers', through a real `Router` against a
//! real loopback issuer; plain HTTP requests keep the RFC 6750 answers.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use common::*;
use jwks_auth::testing::TestIssuer;
use jwks_auth::{AuthError, JwksAuth};

fn grpc_call(token: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc+proto")
        .header("te", "trailers");
    if let Some(token) = token {
        request = request.header("authorization", token);
    }
    request.body(Body::empty()).unwrap()
}

fn service(auth: JwksAuth) -> Router {
    Router::new()
        .route(
            "/grpc.health.v1.Health/Check",
            post(|| async { ([("content-type", "application/grpc")], "") }),
        )
        .route_layer(auth.require_scopes(["health"]))
        .layer(auth.on_rejection(|e: &AuthError| e.response_with_body("an HTTP body")))
}

#[tokio::test]
async fn every_rejection_of_a_grpc_call_is_a_grpc_status() {
    let issuer = TestIssuer::start().await;
    let app = service(issuer.layer().realm("api"));
    let bearer = |t: String| format!("Bearer {t}");
    for (case, token, code) in [
        ("no credentials", None, "16"),
        ("malformed header", Some("Bearer a,b".to_owned()), "3"),
        (
            "expired",
            Some(bearer(issuer.token().expires_in(-3600).sign())),
            "16",
        ),
        (
            "bad signature",
            Some(bearer(format!("{}x", issuer.token().sign()))),
            "16",
        ),
        ("no scope", Some(bearer(issuer.token().sign())), "7"),
    ] {
        let reply = send_request(&app, grpc_call(token.as_deref())).await;
        assert_eq!(reply.status, StatusCode::OK, "{case}: {reply:?}");
        assert_eq!(reply.headers["content-type"], "application/grpc", "{case}");
        assert_eq!(reply.headers["grpc-status"], code, "{case}");
        assert!(reply.headers.contains_key("grpc-message"), "{case}");
        assert!(
            reply
                .challenge()
                .unwrap()
                .starts_with(r#"Bearer realm="api""#),
            "{case}: the challenge is kept"
        );
        assert!(
            reply.body.is_empty(),
            "{case}: trailers-only, not the hook's body"
        );
    }
    let ok = send_request(
        &app,
        grpc_call(Some(&bearer(issuer.token().scope("health").sign()))),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(
        !ok.headers.contains_key("grpc-status"),
        "the service answered"
    );

    // No key set: 14 UNAVAILABLE, with Retry-After.
    let down = service(
        JwksAuth::new("http://127.0.0.1:9/jwks.json")
            .fetch_timeout(std::time::Duration::from_millis(300)),
    );
    let reply = send_request(&down, grpc_call(Some(&bearer(issuer.token().sign())))).await;
    assert_eq!(reply.headers["grpc-status"], "14");
    assert!(reply.headers.contains_key("retry-after"));

    // Plain HTTP to the same route keeps the RFC 6750 answer (and the hook).
    let http = Request::post("/grpc.health.v1.Health/Check")
        .body(Body::empty())
        .unwrap();
    let reply = send_request(&app, http).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, "an HTTP body");
}
