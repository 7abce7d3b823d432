//! One API trusting two identity providers (tenants), each with its own key set and
//! refresh task; one found through OIDC discovery.
//!
//! ```text
//! cargo run --example multi_tenant
//! ```

mod common;

use axum::Router;
use axum::routing::get;
use jwks_auth::testing::{AUDIENCE, TestIssuer};
use jwks_auth::{Claims, JwksAuth};

#[tokio::main]
async fn main() {
    let acme = TestIssuer::start().await;
    let zeta = TestIssuer::start().await;
    let stranger = TestIssuer::start().await;
    let auth = JwksAuth::multi_issuer([
        jwks_auth::TrustedIssuer::new(acme.issuer(), acme.jwks_url()),
        jwks_auth::TrustedIssuer::discovered(zeta.issuer()),
    ])
    .audience(AUDIENCE);
    let app = Router::new()
        .route(
            "/whoami",
            get(|Claims(c): Claims| async move {
                format!(
                    "{} from {}",
                    c.sub.unwrap_or_default(),
                    c.iss.unwrap_or_default()
                )
            }),
        )
        .layer(auth.clone());
    let bearer = |t: String| vec![("authorization", format!("Bearer {t}"))];
    let results = vec![
        common::expect(
            &app,
            "tenant acme",
            common::request("/whoami", &bearer(acme.token().subject("ann").sign())),
            200,
        )
        .await,
        common::expect(
            &app,
            "tenant zeta (discovered)",
            common::request("/whoami", &bearer(zeta.token().subject("zed").sign())),
            200,
        )
        .await,
        common::expect(
            &app,
            "untrusted issuer",
            common::request("/whoami", &bearer(stranger.token().sign())),
            401,
        )
        .await,
        common::expect(
            &app,
            "acme's key claiming zeta",
            common::request(
                "/whoami",
                &bearer(acme.token().claim("iss", zeta.issuer()).sign()),
            ),
            401,
        )
        .await,
    ];
    for (name, issuer) in [("acme", &acme), ("zeta", &zeta)] {
        if let Some(status) = auth.status().issuer(issuer.issuer()).cloned() {
            println!(
                "{name}: {} keys, ready: {}",
                status.key_count,
                status.is_ready()
            );
        }
    }
    common::finish(&results);
}
