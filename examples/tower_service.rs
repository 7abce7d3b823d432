//! The layer on a plain `tower::Service` (no axum routing), and `JwksAuth::verify` for a
//! token that does not arrive over HTTP (a WebSocket message, a queued job).
//!
//! ```text
//! cargo run --example tower_service
//! ```

use std::convert::Infallible;

use axum::body::Body;
use http::{Request, Response};
use jwks_auth::testing::TestIssuer;
use jwks_auth::{SharedClaims, StandardClaims};
use tower::{ServiceBuilder, ServiceExt};

/// A bare service: reads the verified claims the layer put in the extensions (shared,
/// without a copy; `Claims::from_extensions` gives an owned copy).
async fn handle(request: Request<Body>) -> Result<Response<Body>, Infallible> {
    let who = SharedClaims::<StandardClaims>::from_extensions(request.extensions())
        .and_then(|claims| claims.sub.clone())
        .unwrap_or_default();
    Ok(Response::new(Body::from(format!("hello, {who}"))))
}

#[tokio::main]
async fn main() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    let service = ServiceBuilder::new().layer(auth.clone()).service_fn(handle);

    let mut ok = true;
    for (label, token, expected) in [
        (
            "valid token",
            Some(issuer.token().subject("tower-user").sign()),
            200,
        ),
        (
            "expired token",
            Some(issuer.token().expires_in(-3600).sign()),
            401,
        ),
        ("no token", None, 401),
    ] {
        let mut request = Request::get("/");
        if let Some(t) = &token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request.body(Body::empty()).unwrap_or_default();
        let response = match service.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap_or_default();
        println!("{label:<16} {status} {}", String::from_utf8_lossy(&body));
        ok &= status == expected;
    }

    // The same rules, key set and refresh, without HTTP.
    let message_token = issuer.token().subject("ws-client").sign();
    match auth.verify(&message_token).await {
        Ok(claims) => println!("verify(): accepted {:?}", claims.sub),
        Err(e) => {
            println!("verify(): rejected: {e}");
            ok = false;
        }
    }
    match auth.verify("not-a-token").await {
        Ok(_) => ok = false,
        Err(e) => println!("verify(): rejected garbage: {e} ({})", e.status()),
    }
    if !ok {
        std::process::exit(1);
    }
}
