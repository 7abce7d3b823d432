//! A gRPC service behind the layer: tonic's standard health service
//! (`grpc.health.v1.Health`, pre-generated, no protobuf build step) over HTTP/2 cleartext,
//! configured by the same environment variables as `protected_api`.
//!
//! ```text
//! JWKS_URL=https://idp.example.com/.well-known/jwks.json JWT_AUDIENCE=orders-api \
//!     cargo run --example grpc_api
//! grpcurl -plaintext -H "authorization: Bearer $TOKEN" 127.0.0.1:3000 grpc.health.v1.Health/Check
//! ```
//!
//! Variables: `JWKS_URL` or `OIDC_ISSUER`, `JWT_ISSUER`, `JWT_AUDIENCE`, `LISTEN_ADDR`
//! (default `127.0.0.1:3000`), `JWKS_REFRESH_SECS`, `JWKS_COOLDOWN_SECS`,
//! `JWT_LEEWAY_SECS`, `JWKS_ALLOW_HTTP`, `JWT_CACHE_ENTRIES`, `JWT_REALM`, as for
//! `protected_api`. Prints `listening on ADDR`; bad configuration exits with status 2.
//!
//! `Check` and `Watch` need a valid token (else `UNAUTHENTICATED`, 16); the service name
//! `admin` (`Check{service:"admin"}`) needs scope `admin` too (else `PERMISSION_DENIED`,
//! 7), checked in the handler from the claims the layer put in the request extensions.
//! With no usable key set the answer is `UNAVAILABLE` (14).

mod common;

use jwks_auth::{Scopes, SharedClaims, StandardClaims};
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthService, WatchStream};

/// The standard health service, with the scope rule for the `admin` service name.
struct ScopedHealth(HealthService);

/// The verified claims, read from the request extensions as any tonic handler can.
fn authorize(request: &Request<HealthCheckRequest>) -> Result<(), Status> {
    if request.get_ref().service != "admin" {
        return Ok(());
    }
    let claims = SharedClaims::<StandardClaims>::from_extensions(request.extensions())
        .ok_or_else(|| Status::unauthenticated("no verified claims"))?;
    if claims.has_scope("admin") {
        Ok(())
    } else {
        Err(Status::permission_denied("the token lacks the admin scope"))
    }
}

#[tonic::async_trait]
impl Health for ScopedHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        authorize(&request)?;
        self.0.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        authorize(&request)?;
        self.0.watch(request).await
    }
}

#[tokio::main]
async fn main() {
    let (auth, listener) = common::env::configure_and_bind().await;
    let (reporter, _) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::Serving)
        .await;
    reporter
        .set_service_status("admin", ServingStatus::Serving)
        .await;
    let health = ScopedHealth(HealthService::from_health_reporter(reporter));
    let app = tonic::service::Routes::new(HealthServer::new(health))
        .into_axum_router()
        .layer(auth);
    common::env::serve(listener, app).await;
}
