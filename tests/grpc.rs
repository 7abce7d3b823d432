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
        .layer(auth.on_rejection(|_: &AuthError| "an HTTP body"))
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
            .issuer(issuer.issuer())
            .audience(jwks_auth::testing::AUDIENCE)
            .refresh(jwks_auth::Refresh::default().timeout(std::time::Duration::from_millis(300))),
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

mod tonic_client {
    //! The same through tonic: a real HTTP/2 server on loopback, a real tonic client.
    use super::*;
    use tonic::Code;
    use tonic_health::ServingStatus;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::health_server::HealthServer;
    use tonic_health::server::HealthService;

    /// tonic's health service behind the layer, scope `health` required by a route layer.
    async fn start(auth: JwksAuth) -> String {
        let (reporter, _) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        let app = tonic::service::Routes::new(HealthServer::new(
            HealthService::from_health_reporter(reporter),
        ))
        .into_axum_router()
        .route_layer(auth.require_scopes(["health"]))
        .layer(auth);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn connect(url: String) -> HealthClient<tonic::transport::Channel> {
        let channel = tonic::transport::Channel::from_shared(url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
    }

    fn request(authorization: Option<&str>) -> tonic::Request<HealthCheckRequest> {
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: String::new(),
        });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[tokio::test]
    async fn each_rejection_class_is_its_grpc_status_for_unary_and_streaming_calls() {
        let issuer = TestIssuer::start().await;
        let url = start(issuer.layer()).await;
        let mut client = connect(url).await;
        let bearer = |t: String| format!("Bearer {t}");
        let cases = [
            ("no credentials", None, Code::Unauthenticated),
            (
                "malformed",
                Some("Bearer a,b".to_owned()),
                Code::InvalidArgument,
            ),
            (
                "expired",
                Some(bearer(issuer.token().expires_in(-3600).sign())),
                Code::Unauthenticated,
            ),
            (
                "another audience",
                Some(bearer(issuer.token().audience("other").sign())),
                Code::Unauthenticated,
            ),
            (
                "no scope",
                Some(bearer(issuer.token().sign())),
                Code::PermissionDenied,
            ),
        ];
        for (case, auth, code) in &cases {
            let status = client.check(request(auth.as_deref())).await.unwrap_err();
            assert_eq!(status.code(), *code, "check, {case}: {status:?}");
            let status = client.watch(request(auth.as_deref())).await.unwrap_err();
            assert_eq!(status.code(), *code, "watch, {case}: {status:?}");
        }
        let good = bearer(issuer.token().scope("health").sign());
        let reply = client.check(request(Some(&good))).await.unwrap();
        assert_eq!(reply.get_ref().status, ServingStatus::Serving as i32);
        let mut stream = client
            .watch(request(Some(&good)))
            .await
            .unwrap()
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(first.status, ServingStatus::Serving as i32);

        // No usable key set: UNAVAILABLE.
        let down = start(
            JwksAuth::new("http://127.0.0.1:9/jwks.json")
                .issuer(issuer.issuer())
                .audience(jwks_auth::testing::AUDIENCE)
                .refresh(
                    jwks_auth::Refresh::default().timeout(std::time::Duration::from_millis(300)),
                ),
        )
        .await;
        let mut client = connect(down).await;
        let status = client.check(request(Some(&good))).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
}
